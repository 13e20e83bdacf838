//! Running a task binary the way the agent does, and reading its log.

use std::path::Path;

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
    let home = std::env::temp_dir().join(crate::unique("home"));
    std::fs::create_dir_all(&home).unwrap();
    let launch = crate::platform::command(binary);
    let (mut cmd, to_files) = (launch.cmd, launch.to_files);
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
    cmd.envs(launch.env);
    let (stdout, stderr, code) = if to_files {
        let out = home.join("stdout");
        let err = home.join("stderr");
        cmd.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let status = cmd.status().expect("the task runs");
        (
            std::fs::read(&out).unwrap(),
            std::fs::read(&err).unwrap(),
            status.code(),
        )
    } else {
        let out = cmd.output().expect("the task binary runs");
        (out.stdout, out.stderr, out.status.code())
    };
    let _ = std::fs::remove_dir_all(&home);
    TaskRun {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code,
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
