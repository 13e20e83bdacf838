//! `cargo xtask <command>`: all project automation.
//!
//! - `test [cargo test args]`: installs and starts what the tests need (moto
//!   in `.tools/venv`, tfx-cli in `.tools/node`, the toolchains, Wine and
//!   qemu), then runs every test, and one task's tests with its Windows and
//!   its Linux arm64 binary. `--all-platforms` runs more tasks that way;
//!   `--platform P [-p task]...` only that.
//! - `toolchains [--runners]`: installs the toolchains for every platform
//!   (and, with `--runners`, Wine, Windows Node and qemu for the tests).
//! - `package [--platform LIST|all|none] [--prebuilt DIR] [--publisher P]
//!   [--extension-id ID] [--dev] [--out DIR]`: release binaries for every
//!   platform and the Marketplace .vsix, with a size table; refuses a .vsix
//!   over 100 MB. `--dev` makes a private build that installs beside the
//!   released one (its own id, task GUIDs and service-connection type).
//! - `build --platform LIST [--native] [--out DIR]`: release binaries only,
//!   in the layout `package --prebuilt` takes (a release pipeline's parts).
//! - `run <TaskName> [--input k=v] [--variable k=v] [--secret k=v]
//!   [--connection k=v] [--connection-data k=v]`: a task as the agent runs it.
//! - `bench startup`: cold start through the launcher.
//! - `bench s3 [rounds]`: S3Upload and S3Download against aws s3 cp and s5cmd
//!   on s3s-fs, and a 50,000-file sync against aws s3 sync.
//! - `moto`: the local AWS emulator in the foreground.

// A developer tool: it prints to its terminal and calls libc directly.
#![allow(clippy::print_stdout, clippy::print_stderr, unsafe_code)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use xtask::{build, layout, platform_tests, platforms, run_task, sizes, toolchains, tools, vsix};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(rest),
        Some("moto") => moto_foreground(),
        Some("package") => package(rest).map(|_| ()),
        Some("build") => build_parts(rest),
        Some("toolchains") => toolchains(rest),
        Some("run") => run(rest),
        Some("bench") => bench(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n  test [--platform P [-p task]...] [--all-platforms] [cargo test args]\n  toolchains [--runners]\n  package [--platform LIST|all] [--prebuilt DIR] [--publisher P] [--extension-id ID] [--dev] [--out DIR]\n  build --platform LIST [--native] [--out DIR]\n  run <TaskName> [--input k=v] [--variable k=v] [--secret k=v] [--connection k=v] [--connection-data k=v]\n  bench startup | bench s3 [rounds]\n  moto"
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

/// `test [--platform P [-p PKG]...] [--all-platforms] [cargo test args]`.
fn test(args: &[String]) -> Result<()> {
    let root = tools::root();
    let mut platform = None;
    let mut all = false;
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--platform" => platform = Some(it.next().context("--platform needs a value")?.clone()),
            "--all-platforms" => all = true,
            _ => extra.push(a.clone()),
        }
    }
    let moto = tools::Moto::start(&root)?;
    println!("xtask: moto {} at {}", tools::MOTO_VERSION, moto.endpoint);
    if let Some(platform) = platform {
        // Only that platform's run of the named task packages.
        let packages: Vec<&str> = extra
            .chunks(2)
            .filter(|c| c[0] == "-p")
            .filter_map(|c| c.get(1).map(String::as_str))
            .collect();
        let default = platform_tests::ALL
            .iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, pkgs)| pkgs.to_vec())
            .unwrap_or_default();
        let packages = if packages.is_empty() {
            default
        } else {
            packages
        };
        return platform_tests::run(&root, &platform, &packages, &moto.endpoint);
    }
    let tfx = tools::tfx(&root)?;
    toolchains::install_test_services()?;
    let proxy_py = tools::proxy_py(&root)?;
    let aws_cli = tools::aws_cli_dir(&root)?;
    let status = Command::new(tools::cargo())
        .current_dir(&root)
        .args(["test", "--no-fail-fast"])
        .args(
            (!extra
                .iter()
                .any(|a| a == "-p" || a == "--package" || a.starts_with("--package=")))
            .then_some("--workspace"),
        )
        .args(&extra)
        .env("MOTO_ENDPOINT", &moto.endpoint)
        .env("TFX", &tfx)
        .env("PROXY_PY", &proxy_py)
        .env("AWS_CLI_DIR", &aws_cli)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .status()
        .context("running cargo test")?;
    let mut failed = Vec::new();
    if !status.success() {
        failed.push(format!("host tests ({status})"));
    }
    // The other platforms' binaries, run here (Wine, qemu): a small set on
    // every run, everything with --all-platforms; none when the run was
    // narrowed with cargo test arguments.
    let matrix = if all {
        platform_tests::ALL
    } else if extra.is_empty() {
        platform_tests::EVERY_RUN
    } else {
        &[]
    };
    for (platform, packages) in matrix {
        if let Err(e) = platform_tests::run(&root, platform, packages, &moto.endpoint) {
            failed.push(format!("{e:#}"));
        }
    }
    drop(moto);
    if !failed.is_empty() {
        bail!("tests failed: {}", failed.join("; "));
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
    platforms: Vec<&'static platforms::Platform>,
    prebuilt: Option<PathBuf>,
    identity: layout::Identity,
    out: PathBuf,
}

fn parse_package(args: &[String]) -> Result<PackageArgs> {
    let root = tools::root();
    let mut list: Option<String> = None;
    let mut p = PackageArgs {
        platforms: Vec::new(),
        prebuilt: None,
        identity: layout::Identity::default(),
        out: root.join("dist"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--platform" => list = Some(value()?),
            "--prebuilt" => p.prebuilt = Some(PathBuf::from(value()?)),
            "--publisher" => p.identity.publisher = Some(value()?),
            "--extension-id" => p.identity.extension_id = Some(value()?),
            "--dev" => p.identity.dev = true,
            "--out" => p.out = PathBuf::from(value()?),
            other => bail!("unknown option {other}"),
        }
    }
    // With --prebuilt alone, nothing is built here.
    p.platforms = match (list, &p.prebuilt) {
        (Some(l), _) if l == "none" => Vec::new(),
        (Some(l), _) => platforms::parse_list(&l)?,
        (None, Some(_)) => Vec::new(),
        (None, None) => platforms::parse_list("all")?,
    };
    Ok(p)
}

/// Builds, stages and writes the .vsix; prints the sizes.
fn package(args: &[String]) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let root = tools::root();
    let args = parse_package(args)?;
    let tasks = layout::tasks(&root)?;
    let version = layout::workspace_version(&root)?;
    let mut binaries = layout::Binaries::new();
    if !args.platforms.is_empty() {
        toolchains::install(&root, false)?;
    }
    for platform in &args.platforms {
        let bins = platforms::build(&root, &tasks, platform, "release", false)?;
        binaries.insert(platform.name.to_string(), bins);
    }
    if let Some(dir) = &args.prebuilt {
        for (platform, bins) in build::prebuilt(dir, &tasks)? {
            platforms::by_name(&platform)
                .with_context(|| format!("{}: a folder that is no platform", dir.display()))?;
            binaries.entry(platform).or_default().extend(bins);
        }
    }
    if binaries.is_empty() {
        bail!("no binaries: name --platform or --prebuilt");
    }
    let built = started.elapsed();
    let staged = root.join("target/xtask/stage");
    layout::stage(
        &root,
        &staged,
        &binaries,
        &version,
        &args.identity,
        layout::Packing::Brotli,
    )?;
    let vsix = vsix::write(&staged, &args.out)?;
    let report = sizes::Report::measure(&tasks, &binaries, &staged, &vsix)?;
    print!("{report}");
    println!(
        "built in {:.0} s, packed and written in {:.0} s",
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64()
    );
    if let Err(e) = report.check_limits() {
        let _ = std::fs::remove_file(&vsix);
        return Err(e);
    }
    println!("wrote {}", vsix.display());
    Ok(vsix)
}

/// `cargo xtask build --platform LIST [--task LIST] [--native] [--out DIR]`:
/// release binaries in `DIR/<platform>/`, the layout `package --prebuilt`
/// takes (`--task`: only these tasks, to measure one quickly).
fn build_parts(args: &[String]) -> Result<()> {
    let root = tools::root();
    let mut list = None;
    let mut native = false;
    let mut only: Option<String> = None;
    let mut out = root.join("target/parts");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--platform" => list = it.next().cloned(),
            "--native" => native = true,
            "--task" => only = Some(it.next().context("--task needs a value")?.clone()),
            "--out" => {
                out = it
                    .next()
                    .map(PathBuf::from)
                    .context("--out needs a value")?
            }
            other => bail!("unknown option {other}"),
        }
    }
    let list = list.context("--platform is required")?;
    let mut tasks = layout::tasks(&root)?;
    if let Some(only) = only {
        tasks = layout::select(tasks, &only)?;
    }
    if !native {
        toolchains::install(&root, false)?;
    }
    for platform in platforms::parse_list(&list)? {
        let bins = platforms::build(&root, &tasks, platform, "release", native)?;
        let dir = out.join(platform.name);
        std::fs::create_dir_all(&dir)?;
        for path in bins.values() {
            std::fs::copy(path, dir.join(path.file_name().unwrap()))?;
        }
        println!("xtask: {} binaries in {}", platform.name, dir.display());
    }
    Ok(())
}

fn toolchains(args: &[String]) -> Result<()> {
    let runners = match args.first().map(String::as_str) {
        None => false,
        Some("--runners") => true,
        Some(other) => bail!("unknown option {other}"),
    };
    toolchains::install(&tools::root(), runners)
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
    tools::stage_task(&root, &task, &binaries, &dir, layout::Packing::Plain)?;
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
