//! Project automation (the cargo-xtask pattern): `cargo xtask <command>`.
//!
//! - `test [cargo test args]`: installs and starts what the tests need (a
//!   pinned moto in a project-local virtualenv, on a free loopback port), then
//!   runs every test of the workspace against it.
//! - `moto`: starts moto in the foreground and prints its endpoint, for
//!   running single tests by hand.

mod tools;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("moto") => moto_foreground(),
        _ => {
            eprintln!("usage: cargo xtask <test [cargo test args] | moto>");
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
    let moto = tools::Moto::start(&root)?;
    println!("xtask: moto {} at {}", tools::MOTO_VERSION, moto.endpoint);
    let status = Command::new(tools::cargo())
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("MOTO_ENDPOINT", &moto.endpoint)
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
