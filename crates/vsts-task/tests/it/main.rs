//! `run` as a process: the test binary runs itself as the task.

mod panics;
