//! The states of executions, task executions and action executions, with
//! Mistral's names, and the one table of legal transitions for each.
//!
//! An invalid transition is an error value, never a panic: the API turns it
//! into a 400 that lists the allowed target states.

use std::fmt;
use std::str::FromStr;

/// A state name that is not one of Mistral's, or a transition the table
/// does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The caller sent a state name we do not know. Caller's fault.
    #[error("unknown state '{0}'")]
    Unknown(String),
    /// The caller asked for a move the table forbids. Caller's fault.
    #[error("cannot change state from {from} to {to}; allowed: {}", allowed.join(", "))]
    Transition {
        from: &'static str,
        to: &'static str,
        allowed: Vec<&'static str>,
    },
}

macro_rules! state_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name on the wire, as Mistral spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StateError;
            fn from_str(s: &str) -> Result<Self, StateError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StateError::Unknown(other.to_string())),
                }
            }
        }
    };
}

state_enum!(
    /// The state of a workflow execution.
    ExecutionState {
        Idle => "IDLE",
        Running => "RUNNING",
        Paused => "PAUSED",
        Success => "SUCCESS",
        Error => "ERROR",
        Cancelled => "CANCELLED",
    }
);

state_enum!(
    /// The state of a task execution.
    TaskState {
        Idle => "IDLE",
        Waiting => "WAITING",
        Running => "RUNNING",
        RunningDelayed => "RUNNING_DELAYED",
        Paused => "PAUSED",
        Success => "SUCCESS",
        Error => "ERROR",
        Cancelled => "CANCELLED",
        Skipped => "SKIPPED",
    }
);

state_enum!(
    /// The state of an action execution (one run of an action, or one
    /// with-items item, or one attempt of a retried action).
    ActionState {
        Idle => "IDLE",
        Running => "RUNNING",
        Success => "SUCCESS",
        Error => "ERROR",
        Cancelled => "CANCELLED",
    }
);

impl ExecutionState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ExecutionState::Success | ExecutionState::Error | ExecutionState::Cancelled
        )
    }

    /// States this one may move to.
    pub fn allowed_next(self) -> &'static [ExecutionState] {
        use ExecutionState::*;
        match self {
            Idle => &[Running, Error, Cancelled],
            Running => &[Paused, Success, Error, Cancelled],
            Paused => &[Running, Error, Cancelled],
            // A finished execution can be rerun from its failed tasks.
            Error => &[Running],
            Success | Cancelled => &[],
        }
    }

    pub fn check_transition(self, to: ExecutionState) -> Result<(), StateError> {
        check(self, to, self.allowed_next())
    }
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Error | TaskState::Cancelled | TaskState::Skipped
        )
    }

    pub fn allowed_next(self) -> &'static [TaskState] {
        use TaskState::*;
        match self {
            Idle => &[
                Waiting,
                Running,
                RunningDelayed,
                Paused,
                Error,
                Cancelled,
                Success,
            ],
            Waiting => &[Running, RunningDelayed, Error, Cancelled, Success],
            RunningDelayed => &[Running, Error, Cancelled, Success],
            Running => &[Paused, Success, Error, Cancelled, RunningDelayed],
            Paused => &[Running, Error, Cancelled],
            // Rerun and skip of a failed task.
            Error => &[Running, Skipped],
            Success | Cancelled | Skipped => &[],
        }
    }

    pub fn check_transition(self, to: TaskState) -> Result<(), StateError> {
        check(self, to, self.allowed_next())
    }
}

impl ActionState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ActionState::Success | ActionState::Error | ActionState::Cancelled
        )
    }

    pub fn allowed_next(self) -> &'static [ActionState] {
        use ActionState::*;
        match self {
            Idle => &[Running, Success, Error, Cancelled],
            Running => &[Success, Error, Cancelled],
            Success | Error | Cancelled => &[],
        }
    }

    pub fn check_transition(self, to: ActionState) -> Result<(), StateError> {
        check(self, to, self.allowed_next())
    }
}

fn check<S: Copy + PartialEq + StateName>(
    from: S,
    to: S,
    allowed: &'static [S],
) -> Result<(), StateError> {
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(StateError::Transition {
            from: from.name(),
            to: to.name(),
            allowed: allowed.iter().map(|s| s.name()).collect(),
        })
    }
}

/// Internal: the static name of a state, shared by the three enums.
trait StateName {
    fn name(self) -> &'static str;
}

impl StateName for ExecutionState {
    fn name(self) -> &'static str {
        self.as_str()
    }
}
impl StateName for TaskState {
    fn name(self) -> &'static str {
        self.as_str()
    }
}
impl StateName for ActionState {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ExecutionState::ALL {
            assert_eq!(s.as_str().parse::<ExecutionState>().unwrap(), *s);
        }
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        assert_eq!(
            "BOGUS".parse::<ActionState>(),
            Err(StateError::Unknown("BOGUS".into()))
        );
    }

    #[test]
    fn invalid_transition_lists_the_allowed_ones() {
        let err = ExecutionState::Success
            .check_transition(ExecutionState::Paused)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot change state from SUCCESS to PAUSED; allowed: "
        );
        let err = ExecutionState::Paused
            .check_transition(ExecutionState::Success)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot change state from PAUSED to SUCCESS; allowed: RUNNING, ERROR, CANCELLED"
        );
        assert!(
            ExecutionState::Running
                .check_transition(ExecutionState::Paused)
                .is_ok()
        );
    }

    #[test]
    fn terminal_states() {
        assert!(TaskState::Skipped.is_terminal());
        assert!(!TaskState::RunningDelayed.is_terminal());
        assert!(ActionState::Cancelled.is_terminal());
        assert!(!ExecutionState::Paused.is_terminal());
    }
}
