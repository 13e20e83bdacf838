//! Project automation, as a library so that its tests can drive it.

pub mod bench;
pub mod build;
pub mod layout;
pub mod run_task;
pub mod tools;
pub mod vsix;
