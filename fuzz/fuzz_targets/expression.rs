//! Arbitrary strings through `Template::parse`; what parses is evaluated
//! against a small context. Nothing may panic, overflow the stack or hang.
#![no_main]

use bora::expr::{Context, NoLookup, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let Ok(t) = Template::parse(&text) else {
        return;
    };
    let data = json!({
        "items": [1, 2, 3],
        "name": "bora",
        "n": 2,
        "f": 1.5,
        "flag": true,
        "nested": {"a": {"b": [1, {"c": null}]}},
        "s": "a,b,c",
    });
    let ctx = Context {
        data: &data,
        lookup: &NoLookup,
    };
    let _ = t.has_expressions();
    let _ = t.referenced_tasks();
    let _ = t.evaluate(&ctx);
});
