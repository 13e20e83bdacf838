//! The extension as Azure DevOps sees it: task.json files against the
//! original inputs, the .vsix against Microsoft's tfx-cli, the launcher
//! under real node, and `cargo xtask run` end to end.

// A developer tool: it prints to its terminal and calls libc directly.
#![allow(clippy::print_stdout, clippy::print_stderr, unsafe_code)]

mod launcher;
mod run;
mod task_json;
mod vsix;

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    xtask::tools::root()
}

pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_exec(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
