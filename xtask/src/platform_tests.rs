//! A task's integration tests, run against another platform's build of the
//! task: the Windows binary through Windows Node and the launcher under
//! Wine, the Linux arm64 binary under qemu (`test_support::platform`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::layout;
use crate::platforms;
use crate::toolchains::{self, Runners};
use crate::tools;

/// What `cargo xtask test` runs on every run (CI): one task per platform,
/// and the tasks that start other programs through node and the launcher
/// on this machine (`linux-x64`: the host's test build, no other build).
pub const EVERY_RUN: &[(&str, &[&str])] = &[
    ("win32-x64", &["s3upload"]),
    ("linux-arm64", &["secretsmanagergetsecret"]),
    (
        "linux-x64",
        &[
            "awscli",
            "awspowershellmodulescript",
            "awsshellscript",
            "configureawscredentials",
            "ecrpushimage",
            "ecrpullimage",
            "beanstalkcreateapplicationversion",
            "beanstalkdeployapplication",
            "codedeploydeployapplication",
            "lambdanetcoredeploy",
            "lambdapublishlayerversion",
            "sendmessage",
            "systemsmanagerruncommand",
        ],
    ),
];

/// What `cargo xtask test --all-platforms` runs besides.
pub const ALL: &[(&str, &[&str])] = &[
    (
        "win32-x64",
        &[
            "s3upload",
            "s3download",
            "secretsmanagergetsecret",
            "cloudformationcreateorupdatestack",
            "awsshellscript",
            "systemsmanagerruncommand",
            "codedeploydeployapplication",
            "beanstalkcreateapplicationversion",
            "beanstalkdeployapplication",
            "lambdapublishlayerversion",
        ],
    ),
    ("linux-arm64", &["s3upload", "secretsmanagergetsecret"]),
    (
        "linux-x64",
        &[
            "awscli",
            "awspowershellmodulescript",
            "awsshellscript",
            "configureawscredentials",
            "ecrpushimage",
            "ecrpullimage",
            "sendmessage",
            "systemsmanagerruncommand",
            "s3upload",
            "s3download",
            "secretsmanagergetsecret",
            "cloudformationcreateorupdatestack",
        ],
    ),
];

/// Tests that cannot run as another platform, and why. Each is named
/// exactly (libtest `--skip NAME --exact`).
pub const HOST_ONLY: &[(&str, &str)] = &[
    (
        "upload::symlinked_files_are_followed",
        "the links are Unix symlinks: Wine shows working ones as plain files and hides broken ones, so it cannot stand for NTFS links",
    ),
    (
        "faults::a_cancelled_multipart_upload_is_aborted",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
    (
        "cancelling_the_step_cancels_the_command",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
    (
        "cancelling_the_step_stops_the_deployment",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
    (
        "cancelling_the_step_aborts_the_environment_update",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
    (
        "failures::a_cancelled_wait_says_the_creation_goes_on_in_aws",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
    (
        "a_script_file_runs_with_credentials_and_without_the_agents_secrets",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "an_assumed_role_reaches_the_script_with_its_session_token_registered_first",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "an_inline_script_runs_in_the_folder_asked_for_and_is_removed",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "exit_codes_and_standard_error_decide_the_result",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "cancelling_ends_the_whole_process_group",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "the_agents_proxy_reaches_the_scripts_tools",
        "the tests run the scripts with bash, which Wine does not have (Git Bash or WSL on a Windows agent); the Windows run checks the error without it",
    ),
    (
        "a_cancelled_download_leaves_no_temporary_file",
        "Wine ends a process without a Wine console on SIGINT instead of raising the console Ctrl-C a Windows agent sends",
    ),
];

/// Builds `packages` for `platform` and runs their integration tests with
/// that build (moto at `moto`).
pub fn run(root: &Path, platform: &str, packages: &[&str], moto: &str) -> Result<()> {
    if platform == "linux-x64" {
        return through_launcher(root, packages, moto);
    }
    let p = platforms::by_name(platform)?;
    if !["win32-x64", "linux-arm64"].contains(&platform) {
        bail!("{platform} binaries cannot be run on this machine");
    }
    toolchains::install(root, true)?;
    let runners = Runners::find(root)?;
    let tasks: Vec<layout::TaskSource> = layout::tasks(root)?
        .into_iter()
        .filter(|t| packages.contains(&t.binary.as_str()))
        .collect();
    if tasks.len() != packages.len() {
        bail!("not every one of {packages:?} is a task");
    }
    let bins = platforms::build(root, &tasks, p, "cross-test", false)?;
    let dir = bins
        .values()
        .next()
        .and_then(|b| b.parent())
        .context("no binary built")?
        .to_path_buf();
    // Windows runs go through task folders as the packager ships them (one
    // Brotli stream and its index), so Windows node unpacks them first.
    let folders = root.join("target").join("platform-tests").join(platform);
    for t in &tasks {
        let binaries: layout::Binaries = [(
            platform.to_string(),
            [(t.binary.clone(), bins[&t.binary].clone())].into(),
        )]
        .into();
        tools::stage_task(
            root,
            t,
            &binaries,
            &folders.join(&t.binary),
            layout::Packing::Brotli,
        )?;
    }
    let mut cmd = Command::new(tools::cargo());
    cmd.current_dir(root).args(["test", "--no-fail-fast"]);
    for pkg in packages {
        cmd.args(["-p", pkg]);
    }
    cmd.args(["--test", "it", "--"]);
    for (name, _why) in HOST_ONLY {
        cmd.args(["--skip", name]);
    }
    if !HOST_ONLY.is_empty() {
        cmd.arg("--exact");
    }
    cmd.env("MOTO_ENDPOINT", moto)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("TASK_TEST_PLATFORM", platform)
        .env("TASK_TEST_BINARIES", &dir)
        .env("TASK_TEST_TASKS", &folders)
        .env("TASK_TEST_WINE", &runners.wine)
        .env("TASK_TEST_WINEPREFIX", &runners.wine_prefix)
        .env("TASK_TEST_NODE", &runners.windows_node)
        .env("TASK_TEST_QEMU", &runners.qemu)
        .env("TASK_TEST_QEMU_SYSROOT", &runners.arm64_sysroot);
    println!(
        "xtask: the tests of {} with the {platform} binaries",
        packages.join(", ")
    );
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!(
            "{platform}: tests of {} failed ({status})",
            packages.join(", ")
        );
    }
    Ok(())
}

/// The host's own test build of `packages`, each run by `node` and the
/// real launcher as a Linux x64 agent runs it (no other build, nothing
/// skipped: this is the host).
fn through_launcher(root: &Path, packages: &[&str], moto: &str) -> Result<()> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        bail!("linux-x64 runs through the launcher only on a Linux x64 machine");
    }
    toolchains::install_test_services()?;
    // By its full path: some tests give the task a PATH without node.
    let node = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .context("node is not on PATH")?;
    let mut cmd = Command::new(tools::cargo());
    cmd.current_dir(root).args(["test", "--no-fail-fast"]);
    for pkg in packages {
        cmd.args(["-p", pkg]);
    }
    cmd.args(["--test", "it"])
        .env("MOTO_ENDPOINT", moto)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_CLI_DIR", tools::aws_cli_dir(root)?)
        .env("PROXY_PY", tools::proxy_py(root)?)
        .env("TASK_TEST_PLATFORM", "linux-x64")
        .env("TASK_TEST_NODE", &node);
    println!(
        "xtask: the tests of {} through node and the launcher",
        packages.join(", ")
    );
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!(
            "linux-x64 (launcher): tests of {} failed ({status})",
            packages.join(", ")
        );
    }
    Ok(())
}
