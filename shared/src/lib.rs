//! bora: Mistral v2 workflows on stateless handlers.
//!
//! See ARCHITECTURE.md at the root for the map of this crate.

pub mod actions;
pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
pub mod engine;
pub mod expr;
pub mod handlers;
pub mod http;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod queue;
pub mod seal;
pub mod secret;
pub mod store;
pub mod target;
pub mod time;
pub mod worker;
pub mod workflow;
