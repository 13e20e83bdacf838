//! The Azure Pipelines agent protocol for native tasks, the Rust counterpart
//! of azure-pipelines-task-lib. It knows nothing of AWS.
//!
//! - [`Env`]: the environment the agent gave the task, read once.
//! - [`Inputs`], [`Variables`], [`Endpoint`]: inputs, pipeline variables and
//!   service connections, with the agent's naming rules.
//! - [`Console`]: the only writer of `##vso` commands and log lines.
//! - [`run`]: the entry point every task `main` calls.
//! - [`tool`]: running another program (a script, a CLI) the way the
//!   agent's own script tasks do.

pub mod command;
mod console;
mod endpoint;
mod env;
mod inputs;
pub mod limits;
pub mod text;
pub mod tool;
mod variables;

use std::future::Future;
use std::io::Write as _;
use std::process::ExitCode;

pub use console::{Captured, Console, TaskResult, VariableOptions};
pub use endpoint::Endpoint;
pub use env::{Env, env_name};
pub use inputs::{InputError, InputResult, Inputs};
pub use limits::{Limit, ceiling, line, lines};
pub use variables::{Variable, Variables};

/// What a running task gets: its name, its environment and its log.
#[derive(Clone, Debug)]
pub struct Task {
    /// The task's name as in task.json (`S3Upload`), also used in the user agent.
    pub name: &'static str,
    pub env: Env,
    pub console: Console,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Console")
    }
}

impl Task {
    pub fn new(name: &'static str, env: Env, console: Console) -> Self {
        Self { name, env, console }
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs::new(&self.env)
    }

    pub fn variables(&self) -> Variables<'_> {
        Variables::new(&self.env)
    }

    /// The agent's temporary folder for this job (`Agent.TempDirectory`,
    /// cleaned by the agent after every job), or the system's when the task
    /// runs outside an agent.
    pub fn temp_dir(&self) -> std::path::PathBuf {
        self.variables()
            .value("Agent.TempDirectory")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
    }

    /// Writes `markdown` into the agent's temporary folder and attaches it
    /// to the run summary (`task.uploadsummary`) under `name`; a failure to
    /// write is only logged.
    pub fn upload_summary(&self, name: &str, markdown: &str) {
        let path = self
            .temp_dir()
            .join(format!("{name}-summary-{}.md", std::process::id()));
        match std::fs::write(&path, markdown) {
            Ok(()) => self.console.upload_summary(&path),
            Err(e) => self
                .console
                .debug(&format!("no summary ({}): {e}", path.display())),
        }
    }

    /// The service connection whose GUID is the value of `input`.
    /// `Ok(None)` when the input is empty; an error when the input names a
    /// connection the agent did not pass.
    pub fn endpoint_from_input(&self, input: &str) -> InputResult<Option<Endpoint>> {
        let Some(id) = self.inputs().get(input) else {
            return Ok(None);
        };
        Endpoint::from_env(&self.env, &id).map(Some).ok_or_else(|| {
            InputError(format!(
                "Input '{input}': service connection '{id}' was not passed to this task \
                 (no ENDPOINT_AUTH_{id} or ENDPOINT_AUTH_PARAMETER_{id}_* variables). \
                 Check that the connection exists and that this pipeline may use it."
            ))
        })
    }
}

/// Runs a task the way the agent expects and returns the process exit code.
///
/// Reads the process environment, logs to stdout, runs `body` on a tokio
/// runtime and reports the outcome with [`finish`]. A panic is reported as a
/// failed task with one `task.logissue` line, never as a Rust backtrace.
pub fn run<F, Fut>(name: &'static str, body: F) -> ExitCode
where
    F: FnOnce(Task) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env = Env::from_process();
    let debug = Variables::new(&env).system_debug();
    let console = Console::stdout(debug);
    install_panic_hook(name, console.clone());
    let task = Task::new(name, env, console.clone());
    // Blocking threads serve file I/O; a small pool keeps memory flat when
    // thousands of small files are read.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return finish(
                &console,
                Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
            );
        }
    };
    let result = runtime.block_on(body(task));
    finish(&console, result)
}

/// Resolves when the agent cancels the step, with what it sent. On Linux
/// and macOS the agent signals node (SIGINT, then SIGTERM after 7.5 s) and
/// the launcher passes the signal on; on Windows it sends Ctrl-C, then
/// Ctrl-Break, to the console, which the task receives itself (the launcher
/// then only waits). A task that races its work against this has a few
/// seconds to clean up (abort multipart uploads) before it is killed.
pub async fn cancelled() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        let (Ok(mut c), Ok(mut b), Ok(mut close)) = (ctrl_c(), ctrl_break(), ctrl_close()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = c.recv() => "Ctrl-C",
            _ = b.recv() => "Ctrl-Break",
            _ = close.recv() => "console closed",
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        std::future::pending().await
    }
}

/// Turns a task's outcome into `task.complete` and an exit code: an error
/// becomes `task.logissue type=error` + `result=Failed` and exit code 1;
/// success with warnings or errors logged becomes `SucceededWithIssues`.
pub fn finish(console: &Console, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) if console.warnings() + console.errors() > 0 => {
            console.complete(TaskResult::SucceededWithIssues, "");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            console.complete(TaskResult::Succeeded, "");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            let message = format!("{e:#}");
            console.error(&message);
            console.complete(TaskResult::Failed, &message);
            ExitCode::FAILURE
        }
    }
}

fn install_panic_hook(name: &'static str, console: Console) {
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Registered secrets are masked here too, unless the panicking
        // thread holds the console (then the agent's own masking remains).
        let message = console.try_mask(&format!(
            "{name} stopped on an internal error{place}: {what}. This is a bug in the task; please report it."
        ));
        // Write directly: the console's lock may be held by the panicking thread.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            command::format("task.logissue", &[("type", "error")], &message)
        );
        let _ = writeln!(
            out,
            "{}",
            command::format("task.complete", &[("result", "Failed")], &message)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse;

    fn commands(text: &str) -> Vec<command::Command> {
        text.lines().filter_map(parse).collect()
    }

    #[test]
    fn success_completes_succeeded() {
        let (c, out) = Console::capture(false);
        assert_eq!(finish(&c, Ok(())), ExitCode::SUCCESS);
        let cmds = commands(&out.text());
        assert_eq!(cmds.last().unwrap().property("result"), Some("Succeeded"));
    }

    #[test]
    fn warnings_make_succeeded_with_issues() {
        let (c, out) = Console::capture(false);
        c.warning("careful");
        assert_eq!(finish(&c, Ok(())), ExitCode::SUCCESS);
        let cmds = commands(&out.text());
        assert_eq!(
            cmds.last().unwrap().property("result"),
            Some("SucceededWithIssues")
        );
    }

    #[test]
    fn errors_are_logged_as_issues_then_fail() {
        let (c, out) = Console::capture(false);
        let err = anyhow::anyhow!("bucket 'b' does not exist").context("upload failed");
        assert_eq!(finish(&c, Err(err)), ExitCode::FAILURE);
        let cmds = commands(&out.text());
        assert!(cmds[0].is("task.logissue"));
        assert_eq!(cmds[0].property("type"), Some("error"));
        assert_eq!(cmds[0].message, "upload failed: bucket 'b' does not exist");
        assert_eq!(cmds[1].property("result"), Some("Failed"));
    }

    #[test]
    fn a_missing_connection_is_an_input_error() {
        let env = Env::from_pairs([("INPUT_AWSCREDENTIALS", "abc")]);
        let (c, _) = Console::capture(false);
        let t = Task::new("T", env, c);
        let err = t.endpoint_from_input("awsCredentials").unwrap_err();
        assert!(
            err.0
                .starts_with("Input 'awsCredentials': service connection 'abc'")
        );
    }
}
