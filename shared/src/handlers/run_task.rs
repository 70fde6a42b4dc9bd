//! run-task: run one action execution and record its result.
//!
//! The action execution is claimed first (a lease, by conditional write),
//! then run, then its result recorded and complete-task told. A message for
//! an action that already finished only re-sends the completion notice, so a
//! duplicate never runs an action twice; a claim whose lease ran out (the
//! worker died mid-action) may be taken over, so a crash never strands one.

use super::{Deps, HandlerError};
use crate::actions::{ActionContext, ActionOutcome};
use crate::engine::{self, states::ActionState};
use crate::expr::{Context, NoLookup};
use crate::queue::Message;
use crate::store::{ActionRecord, StoreError, Write};
use crate::target::{SealedTarget, TargetCloud};
use crate::workflow::Document;
use serde_json::{Map, Value};
use std::time::Duration;

/// Ad-hoc actions may wrap ad-hoc actions; this bounds the chain.
const MAX_AD_HOC_DEPTH: usize = 10;

/// Handle a [`Message::RunAction`].
pub async fn run_task(deps: &Deps, action_execution_id: &str) -> Result<(), HandlerError> {
    let action = match deps.store.get_action(action_execution_id).await {
        Ok(a) => a,
        // The execution was deleted: nothing to do.
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let now = deps.now();
    if action.state.is_terminal() {
        // Finished before; the completion notice may have been lost.
        return notify_done(deps, &action.id).await;
    }
    if action.state == ActionState::Running {
        if action.is_async {
            return Ok(());
        }
        if action.lease_until.is_some_and(|until| until > now) {
            return Err(HandlerError::Busy(format!(
                "action execution {} is being run by another worker",
                action.id
            )));
        }
    }
    if deps
        .store
        .execution_state(&action.execution_id)
        .await?
        .is_terminal()
    {
        return Ok(());
    }
    let task = deps.store.get_task(&action.task_execution_id).await?;
    if task.processed || task.state.is_terminal() {
        return Ok(());
    }
    let doc = deps
        .specs
        .get(deps.store.as_ref(), &task.definition_key)
        .await?;
    // The target is opened before the claim: a key service that cannot be
    // reached now fails the message (it comes back), not the action, and
    // leaves no claim behind to wait out.
    let target = if deps
        .actions
        .needs_target(&base_action(deps, &doc, &action.name).await)
    {
        unseal_target(deps, &action.execution_id).await?
    } else {
        Ok(None)
    };
    // Claim it.
    let mut claimed = action.clone();
    claimed.state = ActionState::Running;
    claimed.lease_until = Some(now + deps.settings.action_lease.as_millis() as i64);
    claimed.updated_at = now;
    deps.store
        .commit(vec![Write::UpdateAction(claimed.clone())])
        .await?;
    claimed.version += 1;

    let target = match target {
        Ok(target) => target,
        Err(message) => {
            let mut failed = claimed;
            failed.state = ActionState::Error;
            failed.lease_until = None;
            failed.state_info = Some(message.clone());
            failed.output = Value::String(message);
            failed.updated_at = deps.now();
            deps.store.commit(vec![Write::UpdateAction(failed)]).await?;
            return notify_done(deps, &action.id).await;
        }
    };
    // The unsealed target lives in this context only, and is dropped with
    // it when the action ends: nothing about a target outlives its task.
    let context = ActionContext {
        execution_id: action.execution_id.clone(),
        task_execution_id: action.task_execution_id.clone(),
        action_execution_id: action.id.clone(),
        task_name: action.task_name.clone(),
        workflow_name: task.workflow_name.clone(),
        target,
        policy: deps.policy.clone(),
    };
    tracing::debug!(action_execution_id = %action.id, action = %action.name, "action started");
    let outcome = run_named(deps, &doc, &action.name, &action.input, &context).await;
    tracing::debug!(action_execution_id = %action.id, action = %action.name, "action finished");

    let mut finished = claimed;
    finished.lease_until = None;
    finished.updated_at = deps.now();
    match outcome {
        ActionOutcome::Async => {
            finished.is_async = true;
            deps.store
                .commit(vec![Write::UpdateAction(finished)])
                .await?;
            Ok(())
        }
        ActionOutcome::Success(result) => {
            let size = serde_json::to_vec(&result).map(|v| v.len()).unwrap_or(0);
            if size > deps.settings.max_result_bytes {
                finished.state = ActionState::Error;
                finished.state_info = Some(format!(
                    "result of action {} is {size} bytes; the limit is {} bytes",
                    action.name, deps.settings.max_result_bytes
                ));
                finished.output = Value::String(finished.state_info.clone().unwrap_or_default());
            } else {
                finished.state = ActionState::Success;
                finished.output = result;
            }
            deps.store
                .commit(vec![Write::UpdateAction(finished)])
                .await?;
            notify_done(deps, &action.id).await
        }
        ActionOutcome::Error(error) => {
            finished.state = ActionState::Error;
            finished.state_info = Some(engine::text_of(&error));
            finished.output = error;
            deps.store
                .commit(vec![Write::UpdateAction(finished)])
                .await?;
            notify_done(deps, &action.id).await
        }
    }
}

/// The registered action an action name comes to, through ad-hoc actions
/// (the document's own, then registered ones).
async fn base_action(deps: &Deps, doc: &Document, name: &str) -> String {
    let mut name = name.to_string();
    for _ in 0..MAX_AD_HOC_DEPTH {
        if let Some(ad_hoc) = doc.actions.iter().find(|a| a.name == name) {
            name = ad_hoc.base.clone();
            continue;
        }
        if deps.actions.get(&name).is_some() {
            break;
        }
        match &deps.resolver {
            Some(resolver) => match resolver.ad_hoc_action(&name, "").await {
                Some(ad_hoc) => name = ad_hoc.base,
                None => break,
            },
            None => break,
        }
    }
    name
}

/// The execution's target cloud, unsealed (`None` in legacy mode). The
/// inner error is why the action fails, naming what failed, never the
/// token; the outer one a failure worth retrying (the store, or a key
/// service that cannot be reached).
async fn unseal_target(
    deps: &Deps,
    execution_id: &str,
) -> Result<Result<Option<TargetCloud>, String>, HandlerError> {
    let execution = deps.store.get_execution(execution_id).await?;
    let Some(sealed) = execution.params.get("target") else {
        return Ok(Ok(None));
    };
    let sealed: SealedTarget = match serde_json::from_value(sealed.clone()) {
        Ok(sealed) => sealed,
        Err(e) => return Ok(Err(format!("the stored target cloud is malformed: {e}"))),
    };
    let root = execution
        .root_execution_id
        .as_deref()
        .unwrap_or(&execution.id);
    match sealed.open(deps.keyring.as_ref(), root).await {
        Ok(target) => Ok(Ok(Some(target))),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => Ok(Err(format!("cannot unseal the target cloud's token: {e}"))),
    }
}

async fn notify_done(deps: &Deps, action_execution_id: &str) -> Result<(), HandlerError> {
    deps.send(
        vec![Message::ActionDone {
            action_execution_id: action_execution_id.to_string(),
        }],
        Duration::ZERO,
    )
    .await
}

/// Run an action by name: an ad-hoc action of the document (its base with
/// `base-input`, then `output`), or a registered one.
pub async fn run_named(
    deps: &Deps,
    doc: &Document,
    name: &str,
    input: &Value,
    context: &ActionContext,
) -> ActionOutcome {
    let mut name = name.to_string();
    let mut input = input.clone();
    let mut outputs = Vec::new();
    for _ in 0..MAX_AD_HOC_DEPTH {
        // The document's own ad-hoc actions first, then registered ones.
        let ad_hoc = match doc.actions.iter().find(|a| a.name == name) {
            Some(a) => Some(a.clone()),
            None if deps.actions.get(&name).is_none() => match &deps.resolver {
                Some(resolver) => resolver.ad_hoc_action(&name, "").await,
                None => None,
            },
            None => None,
        };
        let Some(ad_hoc) = ad_hoc else {
            break;
        };
        let given = match &input {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let checked =
            match engine::check_params(&ad_hoc.name, "AdHocActionSpec", &ad_hoc.input, given) {
                Ok(v) => v,
                Err(e) => return ActionOutcome::Error(Value::String(e.to_string())),
            };
        let ctx = Context {
            data: &checked,
            lookup: &NoLookup,
        };
        input = match ad_hoc.base_input.evaluate(&ctx) {
            Ok(v) => v,
            Err(e) => {
                return ActionOutcome::Error(Value::String(format!(
                    "Failed to evaluate base-input of ad-hoc action {name}: {e}"
                )));
            }
        };
        if let Some(output) = &ad_hoc.output {
            outputs.push((ad_hoc.name.clone(), output.clone()));
        }
        name = ad_hoc.base.clone();
    }
    let given = match input {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return ActionOutcome::Error(Value::String(format!(
                "input of action {name} must be a dict, got {other}"
            )));
        }
    };
    let prepared = match deps.actions.prepare_input(&name, given) {
        Ok(p) => p,
        Err(e) => return ActionOutcome::Error(Value::String(e)),
    };
    let mut outcome = deps.actions.run(&name, &prepared, context).await;
    // Ad-hoc `output:` transforms apply innermost first.
    for (ad_hoc_name, output) in outputs.into_iter().rev() {
        if let ActionOutcome::Success(result) = &outcome {
            let ctx = Context {
                data: result,
                lookup: &NoLookup,
            };
            outcome = match output.evaluate(&ctx) {
                Ok(v) => ActionOutcome::Success(v),
                Err(e) => ActionOutcome::Error(Value::String(format!(
                    "Failed to evaluate output of ad-hoc action {ad_hoc_name}: {e}"
                ))),
            };
        }
    }
    outcome
}

/// An action execution as it is first inserted (not yet claimed).
pub(crate) fn new_action(
    task: &crate::store::TaskRecord,
    name: &str,
    index: i64,
    attempt: i64,
    input: Value,
    now: i64,
) -> ActionRecord {
    ActionRecord {
        id: super::derived_id(&[&task.id, &index.to_string(), &attempt.to_string()]),
        task_execution_id: task.id.clone(),
        execution_id: task.execution_id.clone(),
        task_name: task.name.clone(),
        item_index: index,
        attempt,
        name: name.to_string(),
        state: ActionState::Idle,
        state_info: None,
        input,
        output: Value::Null,
        is_async: false,
        lease_until: None,
        child_execution_id: None,
        counted: false,
        version: 0,
        created_at: now,
        updated_at: now,
    }
}
