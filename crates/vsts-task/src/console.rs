//! The only writer of the task's log: plain lines and `##vso` commands.
//!
//! Invariants:
//! - every secret is registered with `task.setsecret` once, and from then on
//!   it is replaced by `***` in everything else this console prints (the
//!   agent masks too; this is the second lock on the door);
//! - plain text can never be taken for a command: `##vso[` inside it is
//!   defused, so a file name or an S3 key cannot inject a logging command;
//! - text from outside cannot start a line of its own: the agent splits
//!   output on `\r` as well as `\n`, so both break plain text into lines
//!   that are each defused, and both are escaped inside commands;
//! - every command is one line, written and flushed whole.

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::command;

/// How a task ended, spelled as the agent's `TaskResult` enum (case matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
}

impl TaskResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Succeeded => "Succeeded",
            TaskResult::SucceededWithIssues => "SucceededWithIssues",
            TaskResult::Failed => "Failed",
        }
    }
}

/// Options of `task.setvariable`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VariableOptions {
    pub secret: bool,
    pub output: bool,
    pub read_only: bool,
}

struct Inner {
    out: Box<dyn Write + Send>,
    /// Registered secrets, longest first so that a secret containing another
    /// is masked whole.
    secrets: Vec<String>,
    warnings: usize,
    errors: usize,
    debug: bool,
}

/// A cloneable handle on the task log.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Mutex<Inner>>,
}

/// What a captured console printed (tests, local runs).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MASK: &str = "***";

impl Console {
    pub fn new(out: Box<dyn Write + Send>, debug: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                out,
                secrets: Vec::new(),
                warnings: 0,
                errors: 0,
                debug,
            })),
        }
    }

    pub fn stdout(debug: bool) -> Self {
        Self::new(Box::new(io::stdout()), debug)
    }

    /// A console that writes into memory, and the handle to read it.
    pub fn capture(debug: bool) -> (Self, Captured) {
        let captured = Captured::default();
        (Self::new(Box::new(captured.clone()), debug), captured)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while printing must not silence the rest of the log.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a secret with the agent before anything could print it.
    /// A multi-line value is also registered line by line, since the agent
    /// masks line by line.
    pub fn set_secret(&self, value: &str) {
        let mut inner = self.lock();
        let mut parts = vec![value];
        if value.contains(['\n', '\r']) {
            parts.extend(value.split(['\n', '\r']));
        }
        for part in parts {
            if part.trim().is_empty() || inner.secrets.iter().any(|s| s == part) {
                continue;
            }
            let line = command::format("task.setsecret", &[], part);
            inner.write_line(&line);
            inner.secrets.push(part.to_string());
            inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Masks registered secrets in `text`.
    pub fn mask(&self, text: &str) -> String {
        self.lock().mask(text)
    }

    /// Masks without waiting: for the panic hook, which may run on the
    /// thread that holds the console. Unmasked when the console is busy.
    pub fn try_mask(&self, text: &str) -> String {
        match self.inner.try_lock() {
            Ok(inner) => inner.mask(text),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().mask(text),
            Err(std::sync::TryLockError::WouldBlock) => text.to_string(),
        }
    }

    /// A plain log line (several if `text` has newlines).
    pub fn info(&self, text: &str) {
        let mut inner = self.lock();
        let text = inner.mask(text).replace("\r\n", "\n");
        // The agent reads a lone CR as a line break too.
        for line in text.split(['\n', '\r']) {
            let line = defuse(line);
            inner.write_line(&line);
        }
    }

    /// `##vso[task.debug]`, shown by the agent only when `System.Debug` is
    /// true; not written at all otherwise.
    pub fn debug(&self, text: &str) {
        let mut inner = self.lock();
        if inner.debug {
            let text = inner.mask(text);
            inner.write_line(&command::format("task.debug", &[], &text));
        }
    }

    pub fn is_debug(&self) -> bool {
        self.lock().debug
    }

    /// A warning that reaches the run summary.
    pub fn warning(&self, text: &str) {
        let mut inner = self.lock();
        inner.warnings += 1;
        let text = inner.mask(text);
        inner.write_line(&command::format(
            "task.logissue",
            &[("type", "warning")],
            &text,
        ));
    }

    /// An error that reaches the run summary. It does not by itself fail the
    /// task: [`crate::finish`] decides the result.
    pub fn error(&self, text: &str) {
        let mut inner = self.lock();
        inner.errors += 1;
        let text = inner.mask(text);
        inner.write_line(&command::format(
            "task.logissue",
            &[("type", "error")],
            &text,
        ));
    }

    pub fn warnings(&self) -> usize {
        self.lock().warnings
    }

    pub fn errors(&self) -> usize {
        self.lock().errors
    }

    /// `task.setvariable`. A secret value is registered first; the value
    /// itself is never masked (the agent needs it).
    pub fn set_variable(&self, name: &str, value: &str, options: VariableOptions) {
        if options.secret {
            self.set_secret(value);
        }
        let flag = |b: bool| if b { "true" } else { "" };
        let line = command::format(
            "task.setvariable",
            &[
                ("variable", name),
                ("issecret", flag(options.secret)),
                ("isoutput", flag(options.output)),
                ("isreadonly", flag(options.read_only)),
            ],
            value,
        );
        self.lock().write_line(&line);
    }

    pub fn set_progress(&self, percent: u32, operation: &str) {
        let mut inner = self.lock();
        let op = inner.mask(operation);
        let value = percent.min(100).to_string();
        inner.write_line(&command::format(
            "task.setprogress",
            &[("value", &value)],
            &op,
        ));
    }

    /// Attaches a Markdown file to the run summary.
    pub fn upload_summary(&self, path: &Path) {
        let line = command::format("task.uploadsummary", &[], &path.to_string_lossy());
        self.lock().write_line(&line);
    }

    pub fn complete(&self, result: TaskResult, message: &str) {
        let mut inner = self.lock();
        let message = inner.mask(message);
        inner.write_line(&command::format(
            "task.complete",
            &[("result", result.as_str())],
            &message,
        ));
    }

    pub fn group(&self, title: &str) {
        let mut inner = self.lock();
        let title = defuse(&inner.mask(title).replace(['\r', '\n'], " "));
        inner.write_line(&format!("##[group]{title}"));
    }

    pub fn end_group(&self) {
        self.lock().write_line("##[endgroup]");
    }
}

impl Inner {
    fn write_line(&mut self, line: &str) {
        // One write per line so concurrent tasks never interleave inside one.
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        // A closed stdout leaves nothing to report to; ignore the error.
        let _ = self.out.write_all(buf.as_bytes());
        let _ = self.out.flush();
    }

    fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

/// Makes plain text inert: the agent looks for `##vso[` anywhere in a line
/// and treats `##[` at the start as formatting.
/// Both in any letter case, and `##[` after leading blanks too.
fn defuse(line: &str) -> String {
    let mut line = line.to_string();
    let mut from = 0;
    while let Some(at) = line.as_bytes()[from..]
        .windows(6)
        .position(|w| w.eq_ignore_ascii_case(b"##vso["))
    {
        let at = from + at + 5;
        line.insert(at, '\u{200B}');
        from = at + '\u{200B}'.len_utf8() + 1;
    }
    let start = line.len() - line.trim_start().len();
    if line[start..].starts_with("##[") {
        line.insert(start + 1, '\u{200B}');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse;

    #[test]
    fn secrets_are_registered_once_then_masked_everywhere() {
        let (c, out) = Console::capture(true);
        c.set_secret("s3cr;et");
        c.set_secret("s3cr;et");
        c.info("key is s3cr;et");
        c.warning("warn s3cr;et");
        c.debug("dbg s3cr;et");
        let text = out.text();
        assert_eq!(text.matches("s3cr").count(), 1, "{text}");
        assert!(text.starts_with("##vso[task.setsecret]s3cr;et\n"));
        assert!(text.contains("key is ***"));
        assert_eq!(c.warnings(), 1);
    }

    #[test]
    fn multi_line_secrets_are_registered_line_by_line() {
        let (c, out) = Console::capture(false);
        c.set_secret("line one\nline two");
        let cmds: Vec<_> = out.text().lines().filter_map(parse).collect();
        let values: Vec<_> = cmds.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(values, ["line one\nline two", "line one", "line two"]);
    }

    #[test]
    fn plain_text_cannot_inject_a_command() {
        let (c, out) = Console::capture(false);
        c.info("file ##vso[task.complete result=Failed]x");
        c.info("##[error]not an error");
        for line in out.text().lines() {
            assert!(parse(line).is_none(), "{line}");
            assert!(!line.starts_with("##["), "{line}");
        }
    }

    /// Hostile text (as a file name, an S3 key, a stack event reason or a
    /// log tail could carry) through every kind of line: read as the agent
    /// reads output, split on CR and LF, only the console's own commands
    /// appear and no line starts a formatting tag.
    #[test]
    fn outside_text_cannot_start_a_line_of_its_own() {
        let hostile = [
            "a\r##vso[task.setvariable variable=x]y",
            "a\r##[error]forged",
            "a\n##[group]forged",
            "a\r\n  ##[section]forged",
            "x ##VSO[task.complete result=Failed]y",
            "\r##vso[task.logissue type=error]z\r",
            "%0D##[error]escaped CR",
        ];
        let (c, out) = Console::capture(true);
        let mut expected = Vec::new();
        for h in hostile {
            c.info(h);
            c.debug(h);
            expected.push("task.debug");
            c.warning(h);
            expected.push("task.logissue");
            c.error(h);
            expected.push("task.logissue");
            c.group(h);
            c.end_group();
            c.set_progress(50, h);
            expected.push("task.setprogress");
            c.upload_summary(Path::new(h));
            expected.push("task.uploadsummary");
            c.complete(TaskResult::Failed, h);
            expected.push("task.complete");
        }
        let text = out.text();
        let mut seen = Vec::new();
        let (mut groups, mut end_groups) = (0, 0);
        for line in text.split(['\r', '\n']) {
            if let Some(cmd) = parse(line) {
                assert!(line.starts_with("##vso["), "{line:?}");
                seen.push(cmd.name.to_ascii_lowercase());
                continue;
            }
            assert!(
                !line.to_ascii_lowercase().contains("##vso["),
                "an injected command: {line:?}"
            );
            if line.starts_with("##[group]") {
                groups += 1;
            } else if line == "##[endgroup]" {
                end_groups += 1;
            } else {
                let tag = line.trim_start();
                assert!(
                    !tag.starts_with("##["),
                    "a forged formatting line: {line:?}"
                );
            }
        }
        assert_eq!(seen, expected);
        assert_eq!((groups, end_groups), (hostile.len(), hostile.len()));
    }

    #[test]
    fn debug_is_silent_unless_enabled() {
        let (c, out) = Console::capture(false);
        c.debug("hidden");
        assert_eq!(out.text(), "");
    }

    #[test]
    fn set_variable_registers_a_secret_value_first() {
        let (c, out) = Console::capture(false);
        c.set_variable(
            "db.password",
            "p;w]%",
            VariableOptions {
                secret: true,
                output: true,
                ..Default::default()
            },
        );
        let lines: Vec<_> = out.text().lines().map(str::to_string).collect();
        assert_eq!(lines[0], "##vso[task.setsecret]p;w]%AZP25");
        assert_eq!(
            lines[1],
            "##vso[task.setvariable variable=db.password;issecret=true;isoutput=true;]p;w]%AZP25"
        );
    }
}
