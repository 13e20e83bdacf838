//! Running another program for a task, as the agent's own script tasks do
//! (azure-pipelines-task-lib's tool runner): found on the agent's PATH, its
//! argument line split the same way, without the agent's secret-bearing
//! variables, its output streaming live, its standard error noted, and its
//! whole process tree ended when the step is cancelled.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::Env;

/// The agent's variables a tool must not see: secret variables, service
/// connection credentials and the job's access token.
fn hidden(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("SECRET_")
        || upper.starts_with("ENDPOINT_AUTH_")
        || upper == "SYSTEM_ACCESSTOKEN"
}

/// The task's environment without the hidden variables, with `set` added
/// (replacing any variable of the same name, in any case). A tool given
/// an access key without a session token must not pair it with a stale one
/// from the agent's environment: `AWS_SESSION_TOKEN` then goes.
pub fn environment(env: &Env, set: &[(&str, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !hidden(k))
        .filter(|(k, _)| !set.iter().any(|(a, _)| a.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if set.iter().any(|(k, _)| *k == "AWS_ACCESS_KEY_ID")
        && !set.iter().any(|(k, _)| *k == "AWS_SESSION_TOKEN")
    {
        out.retain(|(k, _)| !k.eq_ignore_ascii_case("AWS_SESSION_TOKEN"));
    }
    out.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    out
}

/// The first of `names` found on the agent's PATH, as `which` finds it:
/// an executable file on Linux and macOS; on Windows a file with one of
/// the `PATHEXT` extensions (`.COM;.EXE;.BAT;.CMD` when unset), so `aws`
/// finds `aws.exe` or `aws.cmd`.
pub fn which(env: &Env, names: &[&str]) -> Option<PathBuf> {
    let path = env.raw("PATH").unwrap_or_default();
    let separator = if cfg!(windows) { ';' } else { ':' };
    let extensions: Vec<String> = if cfg!(windows) {
        env.raw("PATHEXT")
            .unwrap_or(".COM;.EXE;.BAT;.CMD")
            .split(';')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        vec![String::new()]
    };
    names.iter().find_map(|name| {
        path.split(separator)
            .filter(|d| !d.is_empty())
            .flat_map(|dir| {
                extensions
                    .iter()
                    .map(move |ext| Path::new(dir).join(format!("{name}{ext}")))
            })
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    match std::fs::metadata(path) {
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        }
        #[cfg(not(unix))]
        Ok(m) => m.is_file(),
        Err(_) => false,
    }
}

/// An argument line split as the agent's tool runner splits it: spaces
/// separate, double quotes group (and are dropped), and inside quotes a
/// backslash escapes a double quote.
pub fn split_arguments(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut arg = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut last_was_space = true;
    let append = |arg: &mut String, escaped: &mut bool, c: char| {
        // Only a double quote is escaped; otherwise the backslash stays.
        if *escaped && c != '"' {
            arg.push('\\');
        }
        arg.push(c);
        *escaped = false;
    };
    for c in text.chars() {
        if c == ' ' && !in_quotes {
            if !last_was_space {
                args.push(std::mem::take(&mut arg));
            }
            last_was_space = true;
            continue;
        }
        last_was_space = false;
        if c == '"' {
            if escaped {
                append(&mut arg, &mut escaped, c);
            } else {
                in_quotes = !in_quotes;
            }
            continue;
        }
        if c == '\\' && escaped {
            append(&mut arg, &mut escaped, c);
            continue;
        }
        if c == '\\' && in_quotes {
            escaped = true;
            continue;
        }
        append(&mut arg, &mut escaped, c);
    }
    if !last_was_space {
        args.push(arg.trim().to_string());
    }
    args
}

/// A script written for a tool to run (an inline script, a wrapper) in the
/// agent's temporary folder, removed when dropped.
pub struct TempScript(PathBuf);

impl TempScript {
    /// `<dir>/<prefix>_<pid>_<n>.<extension>`, unique in this process too.
    pub fn write(dir: &Path, prefix: &str, extension: &str, bytes: &[u8]) -> Result<Self> {
        std::fs::create_dir_all(dir).ok();
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{prefix}_{}_{n}.{extension}", std::process::id()));
        std::fs::write(&path, bytes)
            .with_context(|| format!("writing the script {}", path.display()))?;
        Ok(TempScript(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A program to run: its arguments, folder and whole environment.
pub struct Run<'a, A: AsRef<OsStr>> {
    pub program: &'a Path,
    pub args: &'a [A],
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ended by itself; `stderr` says whether it wrote to standard error.
    Exited { code: i32, stderr: bool },
    /// Ended by a signal it did not handle (Linux and macOS).
    Signalled(i32),
    /// The step was cancelled (with what the agent sent) and the program's
    /// process tree was ended.
    Cancelled(&'static str),
}

/// Writes what it is given to the task's standard output, and notes that
/// something came.
struct Noted(Arc<AtomicBool>);

impl Write for Noted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !buf.is_empty() {
            self.0.store(true, Ordering::Relaxed);
        }
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// Runs the program to its end, or until the step is cancelled. Its
/// standard output goes straight to the log; its standard error too (the
/// agent shows both in one log), noted for `failOnStandardError`.
pub async fn run<A: AsRef<OsStr>>(r: Run<'_, A>) -> Result<Outcome> {
    let mut cmd = Command::new(r.program);
    cmd.args(r.args)
        .current_dir(r.cwd)
        .env_clear()
        .envs(r.env)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    // Its own process group, so that cancelling reaches everything it
    // started.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    std::io::stdout().flush().ok();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", r.program.display()))?;
    let pid = child.id();
    let saw_stderr = Arc::new(AtomicBool::new(false));
    let mut stderr = child.stderr.take().context("no standard error pipe")?;
    let noted = Noted(saw_stderr.clone());
    let copier = std::thread::spawn(move || {
        let mut noted = noted;
        let _ = std::io::copy(&mut stderr, &mut noted);
    });
    let (done, exited) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    tokio::select! {
        status = exited => {
            let status = status
                .context("the waiting thread stopped")?
                .with_context(|| format!("waiting for {}", r.program.display()))?;
            let _ = copier.join();
            Ok(match status.code() {
                Some(code) => Outcome::Exited { code, stderr: saw_stderr.load(Ordering::Relaxed) },
                None => Outcome::Signalled(signal_of(&status)),
            })
        }
        how = crate::cancelled() => {
            stop_group(pid).await;
            Ok(Outcome::Cancelled(how))
        }
    }
}

/// What a program printed, for a task that reads its answer (an image
/// digest, a refusal) as well as showing it.
#[derive(Debug)]
pub struct Output {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

/// Like [`run`], with `input` written to the program's standard input (a
/// password, never on its command line) and both its outputs kept as well
/// as shown in the log when `show`.
pub async fn run_output<A: AsRef<OsStr>>(
    r: Run<'_, A>,
    input: Option<&[u8]>,
    show: bool,
) -> Result<Output> {
    let mut cmd = Command::new(r.program);
    cmd.args(r.args)
        .current_dir(r.cwd)
        .env_clear()
        .envs(r.env)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    std::io::stdout().flush().ok();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", r.program.display()))?;
    let pid = child.id();
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // Small enough for the pipe; closed at once so the program reads
        // to its end.
        stdin
            .write_all(bytes)
            .context("writing to the program's input")?;
    }
    let keep = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let Some(mut pipe) = pipe else {
                return kept;
            };
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if show {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
            kept
        })
    };
    let out = keep(child.stdout.take().map(|p| Box::new(p) as _));
    let err = keep(child.stderr.take().map(|p| Box::new(p) as _));
    let (done, exited) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let outcome = tokio::select! {
        status = exited => {
            let status = status
                .context("the waiting thread stopped")?
                .with_context(|| format!("waiting for {}", r.program.display()))?;
            match status.code() {
                Some(code) => Outcome::Exited { code, stderr: false },
                None => Outcome::Signalled(signal_of(&status)),
            }
        }
        how = crate::cancelled() => {
            stop_group(pid).await;
            Outcome::Cancelled(how)
        }
    };
    let text = |t: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&t.join().unwrap_or_default()).into_owned()
    };
    let (stdout, stderr) = (text(out), text(err));
    let outcome = match outcome {
        Outcome::Exited { code, .. } => Outcome::Exited {
            code,
            stderr: !stderr.is_empty(),
        },
        other => other,
    };
    Ok(Output {
        outcome,
        stdout,
        stderr,
    })
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> i32 {
    std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(0)
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> i32 {
    0
}

/// Ends the program's process group: SIGTERM, then SIGKILL to whatever is
/// left after 5 seconds. On Windows the console's Ctrl-C has reached the
/// program already; what is left of its tree is ended with taskkill.
async fn stop_group(pid: u32) {
    let alive = |signal: &str| {
        Command::new("kill")
            .args([signal, "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if cfg!(windows) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        return;
    }
    if !alive("-TERM") {
        return;
    }
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !alive("-0") {
            return;
        }
    }
    alive("-KILL");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_the_agents_tool_runner() {
        assert_eq!(split_arguments(""), Vec::<String>::new());
        assert_eq!(split_arguments("  a   b "), ["a", "b"]);
        assert_eq!(
            split_arguments(r#"--name "two words" x"#),
            ["--name", "two words", "x"]
        );
        assert_eq!(split_arguments(r#""say \"hi\"""#), [r#"say "hi""#]);
        assert_eq!(
            split_arguments(r#"C:\path\x "in \ q""#),
            [r"C:\path\x", r"in \ q"]
        );
        assert_eq!(split_arguments(r#"a "" b"#), ["a", "", "b"]);
        assert_eq!(split_arguments("it's"), ["it's"]);
    }

    #[test]
    fn a_tool_sees_no_secret_bearing_variable() {
        let env = Env::from_pairs([
            ("PATH", "/usr/bin"),
            ("SECRET_DB", "s"),
            ("secret_lower", "s"),
            ("ENDPOINT_AUTH_PARAMETER_X_PASSWORD", "p"),
            ("ENDPOINT_AUTH_X", "{}"),
            ("SYSTEM_ACCESSTOKEN", "t"),
            ("AWS_SESSION_TOKEN", "stale"),
            ("aws_region", "old"),
            ("INPUT_ARGUMENTS", "a"),
        ]);
        let out = environment(
            &env,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIA".into()),
                ("AWS_SECRET_ACCESS_KEY", "k".into()),
                ("AWS_REGION", "eu-west-1".into()),
            ],
        );
        let mut names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_REGION",
                "AWS_SECRET_ACCESS_KEY",
                "INPUT_ARGUMENTS",
                "PATH"
            ]
        );
        // Without credentials of its own, the tool keeps the agent's.
        let out = environment(&env, &[("AWS_REGION", "eu-west-1".into())]);
        assert!(
            out.iter()
                .any(|(k, v)| k == "AWS_SESSION_TOKEN" && v == "stale")
        );
    }

    #[cfg(unix)]
    #[test]
    fn which_finds_the_first_executable_of_the_names() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("vsts-which-{}", std::process::id()));
        let (a, b) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("tool"), "").unwrap(); // not executable
        std::fs::write(b.join("tool"), "").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}::{}", a.display(), b.display());
        let env = Env::from_pairs([("PATH", path.as_str())]);
        assert_eq!(which(&env, &["tool"]), Some(b.join("tool")));
        assert_eq!(which(&env, &["missing", "tool"]), Some(b.join("tool")));
        assert_eq!(which(&env, &["missing"]), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The password reaches the program on standard input, both outputs
    /// are kept, and the exit code and standard error are told.
    #[cfg(unix)]
    #[test]
    fn run_output_feeds_input_and_keeps_both_outputs() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let script = "read secret; echo \"got ${#secret} chars\"; echo refused >&2; exit 3";
        let out = rt
            .block_on(run_output(
                Run {
                    program: Path::new("/bin/sh"),
                    args: &["-c", script],
                    cwd: &std::env::temp_dir(),
                    env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                },
                Some(b"hunter2\n"),
                false,
            ))
            .unwrap();
        assert_eq!(
            out.outcome,
            Outcome::Exited {
                code: 3,
                stderr: true
            }
        );
        assert_eq!(out.stdout, "got 7 chars\n");
        assert_eq!(out.stderr, "refused\n");
    }
}
