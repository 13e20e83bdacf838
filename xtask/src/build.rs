//! Building the task binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::layout::{Binaries, TaskSource, platform_of};
use crate::tools::{cargo, run};

/// The host's target triple (`rustc -vV`).
pub fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host")
}

/// Builds every task for each target (`None`: the host) with `profile` and
/// returns where the binaries are.
pub fn build(
    root: &Path,
    tasks: &[TaskSource],
    targets: &[Option<String>],
    profile: &str,
) -> Result<Binaries> {
    let mut out = Binaries::new();
    for target in targets {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(root)
            .args(["build", "--locked", "--profile", profile]);
        for t in tasks {
            cmd.args(["-p", &t.binary]);
        }
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        run(&mut cmd).with_context(|| {
            format!(
                "building the tasks for {}",
                target.as_deref().unwrap_or("the host")
            )
        })?;
        let triple = match target {
            Some(t) => t.clone(),
            None => host_triple()?,
        };
        let platform = platform_of(&triple)?;
        let dir_profile = if profile == "dev" { "debug" } else { profile };
        let mut dir = root.join("target");
        if let Some(t) = target {
            dir = dir.join(t);
        }
        let dir = dir.join(dir_profile);
        let exe = if triple.contains("windows") {
            ".exe"
        } else {
            ""
        };
        let bins: BTreeMap<String, PathBuf> = tasks
            .iter()
            .map(|t| (t.binary.clone(), dir.join(format!("{}{exe}", t.binary))))
            .collect();
        for path in bins.values() {
            if !path.is_file() {
                bail!("the build did not produce {}", path.display());
            }
        }
        out.insert(platform, bins);
    }
    Ok(out)
}

/// Binaries built elsewhere: `DIR/<platform>/<binary>[.exe]` (the layout
/// `cargo xtask package --target ...` uses), e.g. from a release pipeline
/// that builds each OS on its own machine.
pub fn prebuilt(dir: &Path, tasks: &[TaskSource]) -> Result<Binaries> {
    let mut out = Binaries::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let platform = entry.file_name().to_string_lossy().into_owned();
        let mut bins = BTreeMap::new();
        for t in tasks {
            for name in [t.binary.clone(), format!("{}.exe", t.binary)] {
                let p = entry.path().join(&name);
                if p.is_file() {
                    bins.insert(t.binary.clone(), p);
                }
            }
        }
        if !bins.is_empty() {
            out.insert(platform, bins);
        }
    }
    Ok(out)
}
