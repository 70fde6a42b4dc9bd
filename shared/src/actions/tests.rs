//! Tests of the action registry and the std actions.
