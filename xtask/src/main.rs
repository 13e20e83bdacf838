//! `cargo xtask <command>`: all project automation.
//!
//! - `test [cargo test args]`: installs and starts what the tests need (moto
//!   in `.tools/venv`, tfx-cli in `.tools/node`), then runs every test.
//! - `package [--target T]... [--prebuilt DIR] [--publisher P] [--out DIR]`:
//!   release binaries and the Marketplace .vsix.
//! - `run <TaskName> [--input k=v] [--variable k=v] [--secret k=v]
//!   [--connection k=v] [--connection-data k=v]`: a task as the agent runs it.
//! - `bench startup`: cold start through the launcher.
//! - `bench s3 [rounds]`: S3Upload against aws s3 cp and s5cmd on s3s-fs.
//! - `moto`: the local AWS emulator in the foreground.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use xtask::{build, layout, run_task, tools, vsix};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(rest),
        Some("moto") => moto_foreground(),
        Some("package") => package(rest).map(|_| ()),
        Some("run") => run(rest),
        Some("bench") => bench(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n  test [cargo test args]\n  package [--target T]... [--prebuilt DIR] [--publisher P] [--out DIR]\n  run <TaskName> [--input k=v] [--variable k=v] [--secret k=v] [--connection k=v] [--connection-data k=v]\n  bench startup | bench s3 [rounds]\n  moto"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<()> {
    let root = tools::root();
    let tfx = tools::tfx(&root)?;
    let proxy_py = tools::proxy_py(&root)?;
    let moto = tools::Moto::start(&root)?;
    println!("xtask: moto {} at {}", tools::MOTO_VERSION, moto.endpoint);
    let status = Command::new(tools::cargo())
        .current_dir(&root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("MOTO_ENDPOINT", &moto.endpoint)
        .env("TFX", &tfx)
        .env("PROXY_PY", &proxy_py)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .status()
        .context("running cargo test")?;
    drop(moto);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

fn moto_foreground() -> Result<()> {
    let moto = tools::Moto::start(&tools::root())?;
    println!("MOTO_ENDPOINT={}", moto.endpoint);
    println!("(Ctrl-C to stop)");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

struct PackageArgs {
    targets: Vec<Option<String>>,
    prebuilt: Option<PathBuf>,
    publisher: Option<String>,
    out: PathBuf,
}

fn parse_package(args: &[String]) -> Result<PackageArgs> {
    let root = tools::root();
    let mut p = PackageArgs {
        targets: Vec::new(),
        prebuilt: None,
        publisher: None,
        out: root.join("dist"),
    };
    let mut host = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--target" => p.targets.push(Some(value()?)),
            "--prebuilt" => p.prebuilt = Some(PathBuf::from(value()?)),
            "--publisher" => p.publisher = Some(value()?),
            "--out" => p.out = PathBuf::from(value()?),
            "--no-host" => host = false,
            other => bail!("unknown option {other}"),
        }
    }
    if host && p.targets.is_empty() {
        p.targets.push(None);
    }
    Ok(p)
}

/// Builds, stages and writes the .vsix; prints the sizes.
fn package(args: &[String]) -> Result<PathBuf> {
    let root = tools::root();
    let args = parse_package(args)?;
    let tasks = layout::tasks(&root)?;
    let version = layout::workspace_version(&root)?;
    let mut binaries = build::build(&root, &tasks, &args.targets, "release")?;
    if let Some(dir) = &args.prebuilt {
        for (platform, bins) in build::prebuilt(dir, &tasks)? {
            binaries.entry(platform).or_default().extend(bins);
        }
    }
    let staged = root.join("target/xtask/stage");
    layout::stage(
        &root,
        &staged,
        &binaries,
        &version,
        args.publisher.as_deref(),
        layout::Packing::Brotli,
    )?;
    let vsix = vsix::write(&staged, &args.out)?;
    println!("\n{:<48} {:>10} {:>10}", "task binary", "size", "packed");
    let packed: std::collections::BTreeMap<String, u64> = tasks
        .iter()
        .flat_map(|t| {
            let dir = staged.join("tasks").join(&t.name).join("bin");
            binaries.keys().filter_map(move |platform| {
                let f = dir.join(platform).join(format!("{}.br", t.binary));
                let size = std::fs::metadata(&f).ok()?.len();
                Some((format!("{platform}/{}", t.binary), size))
            })
        })
        .collect();
    for (platform, bins) in &binaries {
        for (name, path) in bins {
            let size = std::fs::metadata(path)?.len();
            let key = format!("{platform}/{name}");
            let packed = packed.get(&key).map(|s| human(*s)).unwrap_or_default();
            println!("{key:<48} {:>10} {packed:>10}", human(size));
        }
    }
    let size = std::fs::metadata(&vsix)?.len();
    println!(
        "{:<40} {:>12}\n",
        vsix.file_name().unwrap().to_string_lossy(),
        human(size)
    );
    println!("wrote {}", vsix.display());
    Ok(vsix)
}

fn human(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

/// Stages one task with the dev build and runs it through the launcher.
fn run(args: &[String]) -> Result<()> {
    let root = tools::root();
    let run_args = run_task::RunArgs::parse(args)?;
    let tasks = layout::tasks(&root)?;
    let task = tasks
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(&run_args.task))
        .with_context(|| {
            format!(
                "no task {}; tasks: {}",
                run_args.task,
                tasks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?
        .clone();
    let binaries = build::build(&root, std::slice::from_ref(&task), &[None], "dev")?;
    let dir = root.join("target/xtask/run").join(&task.name);
    tools::stage_task(&root, &task, &binaries, &dir)?;
    let code = run_task::run(&dir, &task, &run_args)?;
    if code != 0 {
        bail!("{} failed (exit code {code})", task.name);
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("startup") => xtask::tools::bench_startup(&tools::root()),
        Some("s3") => {
            let rounds = args
                .get(1)
                .map(|r| r.parse())
                .transpose()
                .context("rounds must be a number")?
                .unwrap_or(3);
            xtask::bench::s3(&tools::root(), rounds)
        }
        _ => bail!("usage: cargo xtask bench <startup | s3 [rounds]>"),
    }
}
