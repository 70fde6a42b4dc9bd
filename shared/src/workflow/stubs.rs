//! TEMPORARY: replaced by the parser branch's real methods at merge.
use super::WorkflowSpec;
impl WorkflowSpec {
    pub fn start_tasks(&self) -> Vec<&str> {
        Vec::new()
    }
    pub fn inbound(&self, _task: &str) -> Vec<&str> {
        Vec::new()
    }
    pub fn reverse_plan(&self, _target: &str) -> Result<Vec<&str>, super::ParseError> {
        Ok(Vec::new())
    }
}
