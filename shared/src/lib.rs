//! bora: Mistral v2 workflows on stateless handlers.
//!
//! See ARCHITECTURE.md at the root for the map of this crate.

pub mod actions;
pub mod expr;
pub mod http;
pub mod seal;
pub mod secret;
pub mod target;
pub mod workflow;
