//! Project automation, as a library so that its tests can drive it.

// A developer tool: it prints to its terminal and calls libc directly.
#![allow(clippy::print_stdout, clippy::print_stderr, unsafe_code)]

pub mod bench;
pub mod build;
pub mod filters;
pub mod layout;
pub mod platform_tests;
pub mod platforms;
pub mod regions;
pub mod run_task;
pub mod sizes;
pub mod toolchains;
pub mod tools;
pub mod vsix;
