//! The built-in `std.*` actions, with Mistral's names, parameters, defaults
//! and results (see Mistral's `mistral/actions/std_actions.py`).
//!
//! Input reading follows Mistral's leniency where Mistral is lenient (a
//! numeric string is a number, a negative delay is 0) and bounds what
//! Mistral leaves unbounded (sleep length, dict size), because a bora
//! handler must not be tied up or run out of memory by one task.

use super::value::{number, py_str, truthy};
use super::{ActionContext, ActionInfo, ActionOutcome, http};
use crate::workflow::InputParam;
use serde_json::{Map, Value};
use std::time::Duration;

/// Longest `std.sleep` / `std.echo` delay, in seconds; more is an error
/// rather than a handler busy for hours.
pub const MAX_SLEEP_SECONDS: f64 = 3600.0;

/// Largest `std.test_dict` size.
pub const MAX_TEST_DICT_SIZE: u64 = 1_000_000;

/// The error `std.fail` returns when given no (truthy) `error_data`;
/// Mistral's exact text.
pub const FAIL_MESSAGE: &str = "Fail action expected exception.";

/// One of the built-in actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdAction {
    /// `std.noop`
    Noop,
    /// `std.echo`
    Echo,
    /// `std.fail`
    Fail,
    /// `std.sleep`
    Sleep,
    /// `std.async_noop`
    AsyncNoop,
    /// `std.test_dict`
    TestDict,
    /// `std.http`
    Http,
}

impl StdAction {
    /// Every std action, in the order the registry lists them.
    pub const ALL: [StdAction; 7] = [
        StdAction::Noop,
        StdAction::Echo,
        StdAction::Fail,
        StdAction::Sleep,
        StdAction::AsyncNoop,
        StdAction::TestDict,
        StdAction::Http,
    ];

    /// The action's name, e.g. `std.echo`.
    pub fn name(self) -> &'static str {
        match self {
            StdAction::Noop => "std.noop",
            StdAction::Echo => "std.echo",
            StdAction::Fail => "std.fail",
            StdAction::Sleep => "std.sleep",
            StdAction::AsyncNoop => "std.async_noop",
            StdAction::TestDict => "std.test_dict",
            StdAction::Http => "std.http",
        }
    }

    /// Its description and parameters (Mistral's names and defaults).
    pub fn info(self) -> ActionInfo {
        fn req(name: &str) -> InputParam {
            InputParam {
                name: name.to_string(),
                default: None,
            }
        }
        fn opt(name: &str, default: Value) -> InputParam {
            InputParam {
                name: name.to_string(),
                default: Some(default),
            }
        }
        let (description, input): (&str, Vec<InputParam>) = match self {
            StdAction::Noop => ("No-operation action: does nothing, returns null.", vec![]),
            StdAction::Echo => (
                "Returns `output` as its result, after `delay` seconds.",
                vec![req("output"), opt("delay", Value::from(0))],
            ),
            StdAction::Fail => (
                "Always fails, with `error_data` as the error when given.",
                vec![opt("error_data", Value::Null)],
            ),
            StdAction::Sleep => (
                "Sleeps `seconds` seconds (at most 3600), returns null.",
                vec![opt("seconds", Value::from(1))],
            ),
            StdAction::AsyncNoop => (
                "Asynchronous no-operation action: completed from outside.",
                vec![],
            ),
            StdAction::TestDict => (
                "Returns a dict of `size` entries `key_prefix + i: val`.",
                vec![
                    opt("size", Value::from(0)),
                    opt("key_prefix", Value::from("")),
                    opt("val", Value::from("")),
                ],
            ),
            StdAction::Http => (
                "Sends an HTTP request and returns the response.",
                http::params(),
            ),
        };
        ActionInfo {
            name: self.name().to_string(),
            description: description.to_string(),
            input,
            is_async: self == StdAction::AsyncNoop,
        }
    }

    /// Run the action.
    pub async fn run(self, input: &Map<String, Value>, ctx: &ActionContext) -> ActionOutcome {
        match self {
            StdAction::Noop => ActionOutcome::Success(Value::Null),
            StdAction::Echo => echo(input).await,
            StdAction::Fail => fail(input),
            StdAction::Sleep => sleep(input).await,
            StdAction::AsyncNoop => ActionOutcome::Async,
            StdAction::TestDict => test_dict(input),
            // Boxed so that the (large) HTTP future does not make every
            // `run` future, including std.noop's, that large.
            StdAction::Http => Box::pin(http::run(input, ctx)).await,
        }
    }
}

fn error(text: String) -> ActionOutcome {
    ActionOutcome::Error(Value::String(text))
}

/// `std.echo`: Mistral reads `delay` with `float()`, turning unreadable and
/// negative values into 0.
async fn echo(input: &Map<String, Value>) -> ActionOutcome {
    let delay = input.get("delay").and_then(number).unwrap_or(0.0).max(0.0);
    if delay > MAX_SLEEP_SECONDS {
        return error(format!(
            "std.echo: delay must be at most {MAX_SLEEP_SECONDS} seconds, got {delay}"
        ));
    }
    // No timer at all for the common delay-less call (benchmarks).
    if delay > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(delay)).await;
    }
    ActionOutcome::Success(input.get("output").cloned().unwrap_or(Value::Null))
}

/// `std.fail`: Mistral fails with `error_data` if it is truthy, else with
/// its fixed message.
fn fail(input: &Map<String, Value>) -> ActionOutcome {
    match input.get("error_data") {
        Some(data) if truthy(data) => ActionOutcome::Error(data.clone()),
        _ => error(FAIL_MESSAGE.to_string()),
    }
}

/// `std.sleep`: Mistral reads `seconds` with `int()` (fraction dropped,
/// unreadable or negative → 0).
async fn sleep(input: &Map<String, Value>) -> ActionOutcome {
    let seconds = input
        .get("seconds")
        .map_or(Some(1.0), number)
        .unwrap_or(0.0)
        .trunc()
        .max(0.0);
    if seconds > MAX_SLEEP_SECONDS {
        return error(format!(
            "std.sleep: seconds must be at most {MAX_SLEEP_SECONDS}, got {seconds}"
        ));
    }
    if seconds > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    }
    ActionOutcome::Success(Value::Null)
}

/// `std.test_dict`: `{key_prefix + str(i): val for i in range(size)}`.
fn test_dict(input: &Map<String, Value>) -> ActionOutcome {
    let size = match input.get("size") {
        None => 0,
        Some(v) => match v.as_u64().or_else(|| {
            number(v)
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }) {
            Some(n) if n <= MAX_TEST_DICT_SIZE => n,
            Some(n) => {
                return error(format!(
                    "std.test_dict: size must be at most {MAX_TEST_DICT_SIZE}, got {n}"
                ));
            }
            None => {
                return error(format!(
                    "std.test_dict: size must be a non-negative integer, got {v}"
                ));
            }
        },
    };
    let prefix = input.get("key_prefix").map_or_else(String::new, py_str);
    let val = input.get("val").cloned().unwrap_or_else(|| Value::from(""));
    let mut out = Map::with_capacity(size as usize);
    for i in 0..size {
        out.insert(format!("{prefix}{i}"), val.clone());
    }
    ActionOutcome::Success(Value::Object(out))
}
