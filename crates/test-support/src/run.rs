//! Running a task binary the way the agent does, and reading its log.

use std::path::{Path, PathBuf};
use std::process::Child;

use vsts_task::command::{Command as VsoCommand, parse};

/// A finished task process.
#[derive(Debug)]
pub struct TaskRun {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl TaskRun {
    pub fn commands(&self) -> Vec<VsoCommand> {
        self.stdout.lines().filter_map(parse).collect()
    }

    /// The `result` of the last `task.complete`.
    pub fn result(&self) -> Option<String> {
        self.commands()
            .into_iter()
            .rev()
            .find(|c| c.is("task.complete"))
            .and_then(|c| c.property("result").map(str::to_string))
    }

    /// Messages of `task.logissue type=error`.
    pub fn errors(&self) -> Vec<String> {
        self.issues("error")
    }

    pub fn warnings(&self) -> Vec<String> {
        self.issues("warning")
    }

    fn issues(&self, kind: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| c.is("task.logissue") && c.property("type") == Some(kind))
            .map(|c| c.message)
            .collect()
    }

    /// Plain lines (not commands).
    pub fn plain(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| parse(l).is_none()).collect()
    }

    /// Values registered with `task.setsecret`.
    pub fn registered_secrets(&self) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| c.is("task.setsecret"))
            .map(|c| c.message)
            .collect()
    }

    /// The value of the last `task.setvariable` for `name`.
    pub fn variable(&self, name: &str) -> Option<String> {
        self.set_variable(name).map(|c| c.message)
    }

    /// Whether the last `task.setvariable` for `name` made it secret.
    pub fn variable_is_secret(&self, name: &str) -> Option<bool> {
        self.set_variable(name)
            .map(|c| c.property("issecret") == Some("true"))
    }

    fn set_variable(&self, name: &str) -> Option<VsoCommand> {
        self.commands()
            .into_iter()
            .rev()
            .find(|c| c.is("task.setvariable") && c.property("variable") == Some(name))
    }

    /// Fails the test unless the task succeeded with issues and one warning
    /// contains `needle`.
    pub fn assert_warned(&self, needle: &str) -> &Self {
        assert_eq!(
            self.result().as_deref(),
            Some("SucceededWithIssues"),
            "task did not succeed with issues\nstdout:\n{}",
            self.stdout
        );
        assert_eq!(self.code, Some(0), "exit code");
        let warnings = self.warnings();
        assert!(
            warnings.iter().any(|w| w.contains(needle)),
            "no warning contains {needle:?}; warnings: {warnings:#?}\nstdout:\n{}",
            self.stdout
        );
        self
    }

    /// Fails the test with the whole log when the task did not succeed.
    pub fn assert_succeeded(&self) -> &Self {
        assert_eq!(
            self.result().as_deref(),
            Some("Succeeded"),
            "task did not succeed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert_eq!(self.code, Some(0), "exit code");
        self
    }

    pub fn assert_failed_with(&self, needle: &str) -> &Self {
        assert_eq!(
            self.result().as_deref(),
            Some("Failed"),
            "task did not fail\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert_ne!(self.code, Some(0), "a failed task exits non-zero");
        let errors = self.errors();
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "no error issue contains {needle:?}; errors: {errors:#?}\nstdout:\n{}",
            self.stdout
        );
        self
    }
}

/// Runs `binary` with exactly `env` (plus PATH, a private HOME and settings
/// that keep it off the network: no instance metadata, no proxy). Under
/// `cargo xtask test --platform P` it runs that platform's build of the
/// same binary instead, the way its agent would (`platform`).
pub fn run_task(binary: &Path, env: &[(String, String)]) -> TaskRun {
    spawn_task(binary, env).wait()
}

/// A task process started like the agent starts it, still running.
pub struct RunningTask {
    child: Child,
    home: PathBuf,
    /// Output files (Wine), or the threads reading the pipes.
    output: Output,
}

enum Output {
    Files(PathBuf, PathBuf),
    Pipes(
        std::thread::JoinHandle<Vec<u8>>,
        std::thread::JoinHandle<Vec<u8>>,
    ),
}

/// Starts `binary` like [`run_task`] does, without waiting for it.
pub fn spawn_task(binary: &Path, env: &[(String, String)]) -> RunningTask {
    use std::process::Stdio;
    let home = std::env::temp_dir().join(crate::unique("home"));
    std::fs::create_dir_all(&home).unwrap();
    let launch = crate::platform::command(binary);
    let mut cmd = launch.cmd;
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env(
            "AGENT_TEMPDIRECTORY",
            crate::platform::task_path(crate::platform::agent_temp()),
        )
        .env(
            "AWS_CONFIG_FILE",
            crate::platform::task_path(&home.join("none")),
        )
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            crate::platform::task_path(&home.join("none")),
        );
    for (k, v) in env {
        cmd.env(k, crate::platform::task_value(v));
    }
    cmd.envs(launch.env).stdin(Stdio::null());
    if launch.to_files {
        let (out, err) = (home.join("stdout"), home.join("stderr"));
        cmd.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let child = cmd.spawn().expect("the task starts");
        RunningTask {
            child,
            home,
            output: Output::Files(out, err),
        }
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the task binary starts");
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        RunningTask {
            child,
            home,
            output: Output::Pipes(out, err),
        }
    }
}

impl RunningTask {
    /// Cancels the step the way the agent does on Linux: SIGTERM to the
    /// task (what the launcher passes on). Under Wine a signal to a process
    /// without a Wine console ends it outright instead of raising the
    /// console Ctrl-C that a Windows agent sends, so there is no Windows
    /// equivalent here.
    pub fn cancel(&self) {
        assert_ne!(
            crate::platform::platform().as_deref(),
            Some("win32-x64"),
            "Windows cancellation cannot be sent under Wine"
        );
        // SAFETY: kill has no memory preconditions.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM)
        };
    }

    /// Waits until `ready` (polled every 50 ms) holds, so a test can act
    /// mid-run; panics with the task's output if it ends first or after a
    /// minute, saying that `what` never happened.
    pub fn after(mut self, what: &str, mut ready: impl FnMut() -> bool) -> Self {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !ready() {
            if std::time::Instant::now() > deadline || self.finished() {
                panic!("{what} never happened: {:?}", self.wait());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self
    }

    /// Whether the process has ended.
    pub fn finished(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits (at most two minutes) and returns what the task printed.
    pub fn wait(mut self) -> TaskRun {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the task did not end within two minutes");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let (stdout, stderr) = match self.output {
            Output::Files(out, err) => (std::fs::read(out).unwrap(), std::fs::read(err).unwrap()),
            Output::Pipes(out, err) => (out.join().unwrap(), err.join().unwrap()),
        };
        let _ = std::fs::remove_dir_all(&self.home);
        TaskRun {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            code: status.code(),
        }
    }
}

/// Every secret may appear only in a `task.setsecret` line whose value
/// contains it, and that line must come before any other line containing it
/// (which there must not be). Checks stdout and stderr.
pub fn assert_no_leaks(run: &TaskRun, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            if !line.contains(secret) {
                continue;
            }
            let own =
                parse(line).is_some_and(|c| c.is("task.setsecret") && c.message.contains(secret));
            assert!(
                own,
                "secret {secret:?} leaked in line {line:?}\nwhole output:\n{}",
                run.stdout
            );
        }
        // Escaped forms must not slip through either.
        let escaped = vsts_task::command::escape_property(secret);
        if escaped != *secret {
            for line in run.stdout.lines() {
                if line.contains(&escaped) {
                    let own = parse(line).is_some_and(|c| c.is("task.setsecret"));
                    assert!(own, "escaped secret leaked in {line:?}");
                }
            }
        }
    }
}
