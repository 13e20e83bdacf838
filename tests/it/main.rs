//! Tests across every task.

mod hostile_inputs;
