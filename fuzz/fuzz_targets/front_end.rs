//! Arbitrary bytes (as UTF-8, lossily) into the workflow parser; for
//! documents that parse, every compiled expression is evaluated against a
//! small context. Nothing may panic, overflow the stack or hang.
#![no_main]

use bora::expr::{Context, Data, NoLookup, Template};
use bora::workflow::{OnClause, Publish, TaskAction, TransitionTarget, parse_document};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn ctx_data() -> Value {
    json!({
        "items": [1, 2, 3],
        "name": "bora",
        "n": 2,
        "flag": true,
        "nested": {"a": {"b": [1, {"c": null}]}},
        "i": 0,
    })
}

fn data(d: &Option<Data>, ctx: &Context<'_>) {
    if let Some(d) = d {
        let _ = d.evaluate(ctx);
    }
}

fn template(t: &Option<Template>, ctx: &Context<'_>) {
    if let Some(t) = t {
        let _ = t.evaluate(ctx);
    }
}

fn publish(p: &Option<Publish>, ctx: &Context<'_>) {
    if let Some(p) = p {
        for (_, d) in p.branch.iter().chain(&p.global) {
            let _ = d.evaluate(ctx);
        }
    }
}

fn on_clause(c: &Option<OnClause>, ctx: &Context<'_>) {
    let Some(c) = c else { return };
    publish(&c.publish, ctx);
    for t in &c.next {
        template(&t.condition, ctx);
        match &t.target {
            TransitionTarget::Fail { msg }
            | TransitionTarget::Succeed { msg }
            | TransitionTarget::Pause { msg } => data(msg, ctx),
            TransitionTarget::Task(_) | TransitionTarget::Noop => {}
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let Ok(doc) = parse_document(&text) else {
        return;
    };
    let value = ctx_data();
    let ctx = Context {
        data: &value,
        lookup: &NoLookup,
    };
    for wf in &doc.workflows {
        data(&wf.output, &ctx);
        data(&wf.output_on_error, &ctx);
        data(&wf.vars, &ctx);
        for task in &wf.tasks {
            match &task.action {
                TaskAction::Action { input, .. } | TaskAction::Workflow { input, .. } => {
                    let _ = input.evaluate(&ctx);
                }
                TaskAction::Noop => {}
            }
            publish(&task.publish, &ctx);
            publish(&task.publish_on_error, &ctx);
            on_clause(&task.on_success, &ctx);
            on_clause(&task.on_error, &ctx);
            on_clause(&task.on_complete, &ctx);
            if let Some(w) = &task.with_items {
                for (_, t) in &w.vars {
                    let _ = t.evaluate(&ctx);
                }
            }
            if let Some(r) = &task.retry {
                let _ = r.count.evaluate(&ctx);
                let _ = r.delay.evaluate(&ctx);
                template(&r.break_on, &ctx);
                template(&r.continue_on, &ctx);
            }
            for d in [
                &task.wait_before,
                &task.wait_after,
                &task.timeout,
                &task.pause_before,
                &task.concurrency,
            ] {
                data(d, &ctx);
            }
            template(&task.fail_on, &ctx);
        }
        // Graph helpers on what parsed.
        let _ = wf.start_tasks();
        for task in &wf.tasks {
            let _ = wf.inbound(&task.name);
            let _ = wf.reverse_plan(&task.name);
        }
    }
    for a in &doc.actions {
        let _ = a.base_input.evaluate(&ctx);
        data(&a.output, &ctx);
    }
    let _ = bora::workflow::check_references(&doc, &|_| true, &|_| false);
});
