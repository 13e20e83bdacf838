//! Finding bash, the script's environment, and running it: output live,
//! standard error noted, the process group ended on cancellation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vsts_task::Env;

/// The agent's variables a script must not see: secret variables, service
/// connection credentials and the job's access token.
fn hidden(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("SECRET_")
        || upper.starts_with("ENDPOINT_AUTH_")
        || upper == "SYSTEM_ACCESSTOKEN"
}

/// The task's environment without the hidden variables, with `aws` set
/// (replacing any variable of the same name, in any case).
pub fn environment(env: &Env, aws: &[(&str, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !hidden(k))
        .filter(|(k, _)| !aws.iter().any(|(a, _)| a.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Credentials that did not come with a session token must not be
    // paired with a stale one from the agent's environment.
    if !aws.iter().any(|(k, _)| *k == "AWS_SESSION_TOKEN") {
        out.retain(|(k, _)| !k.eq_ignore_ascii_case("AWS_SESSION_TOKEN"));
    }
    out.extend(aws.iter().map(|(k, v)| (k.to_string(), v.clone())));
    out
}

/// bash on the agent's PATH (`sh` where there is no bash, on Linux and
/// macOS, as the original's `sh` demand allows).
pub fn find(env: &Env) -> Result<PathBuf> {
    let path = env.raw("PATH").unwrap_or_default();
    let separator = if cfg!(windows) { ';' } else { ':' };
    let names: &[&str] = if cfg!(windows) {
        &["bash.exe"]
    } else {
        &["bash", "sh"]
    };
    for name in names {
        for dir in path.split(separator).filter(|d| !d.is_empty()) {
            let candidate = Path::new(dir).join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    if cfg!(windows) {
        bail!(
            "bash was not found on the agent's PATH. On Windows the script needs Git for Windows (its Git Bash) \
             or WSL, with bash on the PATH of the agent, as the agent's own Bash task does."
        );
    }
    bail!("Neither bash nor sh was found on the agent's PATH.");
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

/// The argument string split as the agent's tool runner splits it:
/// spaces separate, double quotes group (and are dropped), and inside
/// quotes a backslash escapes a double quote.
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

pub struct Run<'a> {
    pub shell: &'a Path,
    pub script: &'a Path,
    pub arguments: &'a [String],
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited { code: i32, stderr: bool },
    Signalled(i32),
    Cancelled(&'static str),
}

/// The script as bash sees it: on Windows, bash (Git Bash or WSL) reads
/// paths its own way, so the script's folder is asked of bash itself, as
/// the original and the agent's Bash task do.
fn script_argument(shell: &Path, script: &Path) -> Result<String> {
    if !cfg!(windows) {
        return Ok(script.to_string_lossy().into_owned());
    }
    let dir = script.parent().unwrap_or(Path::new("."));
    let out = Command::new(shell)
        .args(["--noprofile", "--norc", "-c", "pwd"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} to find the script's folder", shell.display()))?;
    let unix_dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || unix_dir.is_empty() {
        bail!(
            "bash was unable to find the script's folder {}.",
            dir.display()
        );
    }
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(format!("{}/{name}", unix_dir.trim_end_matches('/')))
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

/// Runs the script to its end, or until the step is cancelled.
pub async fn run(r: Run<'_>) -> Result<Outcome> {
    let script = script_argument(r.shell, r.script)?;
    let mut cmd = Command::new(r.shell);
    cmd.arg(&script)
        .args(r.arguments)
        .current_dir(r.cwd)
        .env_clear()
        .envs(r.env)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    // Its own process group, so that cancelling reaches everything the
    // script started.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    std::io::stdout().flush().ok();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", r.shell.display()))?;
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
                .context("the script's waiting thread stopped")?
                .context("waiting for the script")?;
            let _ = copier.join();
            Ok(match status.code() {
                Some(code) => Outcome::Exited { code, stderr: saw_stderr.load(Ordering::Relaxed) },
                None => Outcome::Signalled(signal_of(&status)),
            })
        }
        how = vsts_task::cancelled() => {
            stop_group(pid).await;
            Ok(Outcome::Cancelled(how))
        }
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> i32 {
    std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(0)
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> i32 {
    0
}

/// Ends the script's process group: SIGTERM, then SIGKILL to whatever is
/// left after 5 seconds. On Windows the console's Ctrl-C has reached the
/// script already; what is left of its tree is ended with taskkill.
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
    fn the_script_sees_no_secret_bearing_variable() {
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
    }
}
