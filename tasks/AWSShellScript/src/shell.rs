//! Finding bash, and the script as bash sees it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use vsts_task::Env;

/// bash on the agent's PATH (`sh` where there is no bash, on Linux and
/// macOS, as the original's `sh` demand allows).
pub fn find(env: &Env) -> Result<PathBuf> {
    let names: &[&str] = if cfg!(windows) {
        &["bash"]
    } else {
        &["bash", "sh"]
    };
    if let Some(found) = vsts_task::tool::which(env, names) {
        return Ok(found);
    }
    if cfg!(windows) {
        bail!(
            "bash was not found on the agent's PATH. On Windows the script needs Git for Windows (its Git Bash) \
             or WSL, with bash on the PATH of the agent, as the agent's own Bash task does."
        );
    }
    bail!("Neither bash nor sh was found on the agent's PATH.");
}

/// The script as bash sees it: on Windows, bash (Git Bash or WSL) reads
/// paths its own way, so the script's folder is asked of bash itself, as
/// the original and the agent's Bash task do.
pub fn script_argument(shell: &Path, script: &Path) -> Result<String> {
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
