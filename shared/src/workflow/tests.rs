//! Tests of the workflow-language parser.
