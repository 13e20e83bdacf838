//! Running a task as another agent platform would: the Windows binary
//! through Windows `node.exe` and the real launcher under Wine, the Linux
//! arm64 binary under qemu. `cargo xtask test --platform P` builds that
//! platform's binaries and runs a task's integration tests with these
//! variables set; every `TaskEnv::run` then runs the other platform's
//! binary, and the tests assert the same state in moto.
//!
//! - `TASK_TEST_PLATFORM`: `win32-x64` or `linux-arm64`, or `linux-x64`:
//!   the host's own binary run as a Linux agent runs it, by `node` and the
//!   real launcher (unset: the host's binary, run directly);
//! - `TASK_TEST_BINARIES`: the folder with that platform's binaries;
//! - for Windows: `TASK_TEST_WINE` (Wine's loader), `TASK_TEST_WINEPREFIX`,
//!   `TASK_TEST_NODE` (Windows `node.exe`), `TASK_TEST_TASKS` (a task folder
//!   per binary, packed as the .vsix ships it: the launcher, task.json, and
//!   the binary in a Brotli stream that the launcher unpacks on first run);
//! - for arm64: `TASK_TEST_QEMU` and `TASK_TEST_QEMU_SYSROOT` (arm64 glibc).

use std::path::{Path, PathBuf};
use std::process::Command;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (cargo xtask test sets it)"))
}

/// The platform the task binaries are run as, when it is not the host.
pub fn platform() -> Option<String> {
    std::env::var("TASK_TEST_PLATFORM")
        .ok()
        .filter(|p| !p.is_empty())
}

/// A path as the task sees it: on Windows, `/tmp/x/y` is `Z:\tmp\x\y`
/// (Wine maps the Linux root to drive Z:), as a Windows agent would pass
/// a path with backslashes and a drive letter.
pub fn task_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    if platform().as_deref() == Some("win32-x64") && text.starts_with('/') {
        format!("Z:{}", text.replace('/', "\\"))
    } else {
        text.into_owned()
    }
}

/// A path the task printed, as this machine sees it (`Z:\tmp\x` is
/// `/tmp/x`).
pub fn host_path(printed: &str) -> PathBuf {
    match printed
        .strip_prefix("Z:")
        .or_else(|| printed.strip_prefix("z:"))
    {
        Some(rest) if platform().as_deref() == Some("win32-x64") => {
            PathBuf::from(rest.replace('\\', "/"))
        }
        _ => PathBuf::from(printed),
    }
}

/// The agent's temporary folder for the tasks of this test process
/// (`AGENT_TEMPDIRECTORY`; the agent always sets it).
pub(crate) fn agent_temp() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(crate::unique("agent-temp"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// An input value as the agent on the platform would pass it: absolute
/// paths of this machine in Windows form for Windows.
pub(crate) fn task_value(value: &str) -> String {
    let path = Path::new(value);
    let local_path = value.starts_with('/')
        && !value.contains('\n')
        && (path.exists() || path.parent().is_some_and(Path::exists));
    if local_path {
        task_path(path)
    } else {
        value.to_string()
    }
}

/// How to run a binary as the platform would.
pub(crate) struct Launch {
    pub cmd: Command,
    /// Variables of the runner itself, set after the task's environment.
    pub env: Vec<(&'static str, String)>,
    /// Whether its output must go to files (Wine's Windows node cannot
    /// write to a pipe).
    pub to_files: bool,
}

/// The command that runs `binary` (a host binary's path; its file name
/// picks the other platform's build) as the platform would.
pub(crate) fn command(binary: &Path) -> Launch {
    let Some(platform) = platform() else {
        return Launch {
            cmd: Command::new(binary),
            env: Vec::new(),
            to_files: false,
        };
    };
    let name = binary
        .file_name()
        .expect("a binary path")
        .to_string_lossy()
        .into_owned();
    match platform.as_str() {
        "win32-x64" => {
            let task = windows_task_folder(&name);
            let mut cmd = Command::new(var("TASK_TEST_WINE"));
            cmd.arg(var("TASK_TEST_NODE"))
                .arg(task_path(&task.join("run.js")));
            Launch {
                cmd,
                env: vec![
                    ("WINEPREFIX", var("TASK_TEST_WINEPREFIX")),
                    ("WINEDEBUG", "-all".to_string()),
                ],
                to_files: true,
            }
        }
        "linux-x64" => {
            let task = launcher_folder(binary, &name);
            let mut cmd = Command::new(var("TASK_TEST_NODE"));
            cmd.arg(task.join("run.js"));
            Launch {
                cmd,
                env: Vec::new(),
                to_files: false,
            }
        }
        "linux-arm64" => {
            let mut cmd = Command::new(var("TASK_TEST_QEMU"));
            cmd.arg("-L")
                .arg(var("TASK_TEST_QEMU_SYSROOT"))
                .arg(PathBuf::from(var("TASK_TEST_BINARIES")).join(&name));
            Launch {
                cmd,
                env: Vec::new(),
                to_files: false,
            }
        }
        other => panic!("TASK_TEST_PLATFORM={other} is not a platform these tests run"),
    }
}

/// A task folder for the host's binary as the launcher expects it
/// (task.json naming the binary, run.js, `bin/linux-x64/<binary>`, here a
/// link to the binary cargo built), made once per test process.
fn launcher_folder(binary: &Path, name: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOLDERS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut folders = FOLDERS.get_or_init(Default::default).lock().unwrap();
    if let Some(task) = folders.get(name) {
        return task.clone();
    }
    let task = std::env::temp_dir().join(crate::unique(&format!("launcher-task-{name}")));
    let bin = task.join("bin").join("linux-x64");
    std::fs::create_dir_all(&bin).unwrap();
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks/launcher/run.js");
    std::fs::copy(&launcher, task.join("run.js"))
        .unwrap_or_else(|e| panic!("{}: {e}", launcher.display()));
    // The launcher runs bin/<platform>/<task.json name, lowercased>.
    std::fs::write(
        task.join("task.json"),
        format!(
            "{{\"name\": \"{name}\", \"version\": {{\"Major\": 1, \"Minor\": 0, \"Patch\": 0}}}}"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(binary, bin.join(name)).unwrap();
    folders.insert(name.to_string(), task.clone());
    task
}

/// A fresh copy of the packed task folder, as the agent downloads it: the
/// first run in each test process unpacks the binary with Windows node.
fn windows_task_folder(name: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOLDERS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut folders = FOLDERS.get_or_init(Default::default).lock().unwrap();
    if let Some(task) = folders.get(name) {
        return task.clone();
    }
    let from = PathBuf::from(var("TASK_TEST_TASKS")).join(name);
    let task = std::env::temp_dir().join(crate::unique(&format!("win-task-{name}")));
    copy_dir(&from, &task);
    folders.insert(name.to_string(), task.clone());
    task
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}
