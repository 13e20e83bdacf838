//! A task that panics: one error line and a failed result, no backtrace,
//! and registered secrets masked in the panic message too.

use std::process::Command;

const CHILD: &str = "VSTS_TASK_PANIC_CHILD";

/// In the child: a task that registers a secret and then panics with it.
fn panicking_task() -> std::process::ExitCode {
    vsts_task::run("PanicDemo", |task| async move {
        task.console.set_secret("hunter2-secret");
        let value = "hunter2-secret";
        panic!("cannot parse {value}");
    })
}

#[test]
fn a_panic_fails_the_task_in_one_line_with_secrets_masked() {
    if std::env::var_os(CHILD).is_some() {
        // Running as the task: the exit code is what the parent checks.
        std::process::exit(if panicking_task() == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        });
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "panics::a_panic_fails_the_task_in_one_line_with_secrets_masked",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stdout}");
    let issues: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("##vso[task.logissue type=error;]"))
        .collect();
    assert_eq!(issues.len(), 1, "{stdout}");
    assert!(
        issues[0].contains("PanicDemo stopped on an internal error at ")
            && issues[0].contains("cannot parse ***"),
        "{}",
        issues[0]
    );
    assert!(
        stdout.contains("##vso[task.complete result=Failed;]"),
        "{stdout}"
    );
    for line in stdout.lines().chain(stderr.lines()) {
        // (libtest may print the test's name in front of the first line.)
        let own = line.ends_with("##vso[task.setsecret]hunter2-secret")
            && line.matches("hunter2-secret").count() == 1;
        assert!(
            !line.contains("hunter2-secret") || own,
            "secret leaked: {line}"
        );
        assert!(!line.contains("stack backtrace"), "no backtrace: {line}");
    }
}
