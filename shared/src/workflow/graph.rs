//! Graph helpers the engine needs on a parsed workflow: start tasks and
//! inbound tasks of direct workflows, the plan of a reverse workflow.
//!
//! They are computed on demand from the (already merged) task specs rather
//! than cached in extra fields, so that `WorkflowSpec` stays a plain struct
//! others can build in tests; each is linear in the number of transitions.

use super::ParseError;
use super::spec::{OnClause, TaskSpec, TransitionTarget, WorkflowSpec};
use std::collections::{HashMap, HashSet};

/// Task names that `task`'s on-success/on-error/on-complete lead to.
fn targets(task: &TaskSpec) -> impl Iterator<Item = &str> {
    [&task.on_success, &task.on_error, &task.on_complete]
        .into_iter()
        .flatten()
        .flat_map(|c: &OnClause| c.next.iter())
        .filter_map(|t| match &t.target {
            TransitionTarget::Task(n) => Some(n.as_str()),
            _ => None,
        })
}

impl WorkflowSpec {
    /// Direct workflows: the tasks no transition of any task leads to
    /// (Mistral's rule; a task looping onto itself is not a start task),
    /// in document order.
    pub fn start_tasks(&self) -> Vec<&str> {
        let targeted: HashSet<&str> = self.tasks.iter().flat_map(targets).collect();
        self.tasks
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !targeted.contains(n))
            .collect()
    }

    /// Names of the tasks with a transition (on any outcome, conditional or
    /// not) to `task`, each once, in document order. This is what `join`
    /// waits for.
    pub fn inbound(&self, task: &str) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| targets(t).any(|n| n == task))
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Reverse workflows: every task `target` needs (through `requires`,
    /// transitively) plus `target` itself, each after all it requires.
    /// Among independent tasks the order follows `requires` lists.
    pub fn reverse_plan(&self, target: &str) -> Result<Vec<&str>, ParseError> {
        let loc = format!("workflow '{}'", self.name);
        let by_name: HashMap<&str, &TaskSpec> =
            self.tasks.iter().map(|t| (t.name.as_str(), t)).collect();
        let Some(&root) = by_name.get(target) else {
            return Err(ParseError {
                location: loc,
                message: format!("unknown task '{target}'"),
            });
        };
        // Iterative post-order walk: the parser already refused cycles and
        // unknown names, but a hand-built spec is guarded against too.
        let mut plan: Vec<&str> = Vec::new();
        let mut done: HashSet<&str> = HashSet::new();
        let mut on_stack: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&TaskSpec, usize)> = vec![(root, 0)];
        on_stack.insert(root.name.as_str());
        while let Some(top) = stack.last_mut() {
            let task = top.0;
            let Some(req) = task.requires.get(top.1) else {
                plan.push(task.name.as_str());
                done.insert(task.name.as_str());
                on_stack.remove(task.name.as_str());
                stack.pop();
                continue;
            };
            top.1 += 1;
            if done.contains(req.as_str()) {
                continue;
            }
            let Some(&dep) = by_name.get(req.as_str()) else {
                return Err(ParseError {
                    location: format!("{loc}, task '{}', key 'requires'", task.name),
                    message: format!("unknown task '{req}'"),
                });
            };
            if !on_stack.insert(dep.name.as_str()) {
                return Err(ParseError {
                    location: loc,
                    message: format!("cycle in 'requires' through '{req}'"),
                });
            }
            stack.push((dep, 0));
        }
        Ok(plan)
    }
}
