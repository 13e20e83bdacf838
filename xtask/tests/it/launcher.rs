//! The launcher under real node.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{root, temp, write_exec};

/// A task folder with the launcher, a task.json named `Demo`, and
/// optionally a script as the linux-x64 binary (written without +x: the
/// launcher must set it).
fn task_dir(name: &str, binary: Option<&str>) -> PathBuf {
    let dir = temp(name);
    std::fs::copy(root().join("tasks/launcher/run.js"), dir.join("run.js")).unwrap();
    std::fs::write(dir.join("task.json"), r#"{"name": "Demo"}"#).unwrap();
    if let Some(script) = binary {
        write_exec(&dir.join("bin/linux-x64/demo"), script, 0o644);
    }
    dir
}

fn node(dir: &Path) -> Command {
    let mut c = Command::new("node");
    c.arg(dir.join("run.js"));
    c
}

#[test]
fn a_missing_binary_fails_the_task_naming_the_platforms() {
    let dir = task_dir("missing", None);
    write_exec(&dir.join("bin/win32-x64/demo.exe"), "x", 0o644);
    write_exec(&dir.join("bin/darwin-arm64/demo"), "x", 0o644);
    let out = node(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "##vso[task.logissue type=error;]Demo has no binary for this agent's platform linux-x64. Platforms shipped: darwin-arm64, win32-x64.",
            "##vso[task.complete result=Failed;]Demo has no binary for this agent's platform linux-x64. Platforms shipped: darwin-arm64, win32-x64.",
        ]
    );
}

#[test]
fn environment_arguments_stdio_and_exit_code_pass_through() {
    let dir = task_dir(
        "env",
        Some(
            "#!/bin/sh\necho \"in=$INPUT_BUCKETNAME secret=$SECRET_AWS_SECRETACCESSKEY ep=$ENDPOINT_AUTH_PARAMETER_X_PASSWORD args=$*\"\necho to-stderr >&2\nexit ${DEMO_EXIT:-0}\n",
        ),
    );
    let out = node(&dir)
        .env("INPUT_BUCKETNAME", "my-bucket")
        .env("SECRET_AWS_SECRETACCESSKEY", "s3cr3t")
        .env("ENDPOINT_AUTH_PARAMETER_X_PASSWORD", "pw")
        .env("DEMO_EXIT", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "in=my-bucket secret=s3cr3t ep=pw args=\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    let out = node(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

fn signal_round_trip(signal: &str) {
    use std::os::unix::process::CommandExt;
    let dir = task_dir(
        &format!("signal-{signal}"),
        Some(&format!(
            "#!/bin/sh\ntrap 'echo got-{signal}; exit 42' {signal}\necho ready\nwhile true; do sleep 0.05; done\n"
        )),
    );
    let mut cmd = node(&dir);
    // A test process started in the background (no job control) inherits
    // SIGINT ignored, and a shell cannot trap a signal ignored on entry. The
    // agent starts tasks with default dispositions: so does this test.
    // SAFETY: signal() is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Never hang: give the round trip 20 seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the launcher did not exit within 20 s of SIG{signal}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(rest, format!("got-{signal}\n"));
    assert_eq!(code, Some(42), "node exits with the child's code");
}

#[test]
fn sigint_is_forwarded() {
    signal_round_trip("INT");
}

#[test]
fn sigterm_is_forwarded() {
    signal_round_trip("TERM");
}

#[test]
fn the_launcher_loads_no_module_but_node_builtins() {
    let text = std::fs::read_to_string(root().join("tasks/launcher/run.js")).unwrap();
    let requires: Vec<&str> = text
        .match_indices("require(")
        .map(|(i, _)| &text[i..i + 30])
        .collect();
    for r in &requires {
        assert!(
            [
                "require('fs')",
                "require('path')",
                "require('child_process')",
                "require('os')",
                "require('zlib')"
            ]
            .iter()
            .any(|ok| r.starts_with(ok)),
            "unexpected {r}"
        );
    }
    assert!(!text.contains("import "), "no ES module imports");
}

/// Packs scripts as the `demo` binary of each platform, the way the
/// packager does (one Brotli stream and bin/index.json).
fn pack(dir: &Path, scripts: &[(&str, &str)]) {
    let src = dir.join("src");
    let mut binaries = xtask::layout::Binaries::new();
    for (platform, script) in scripts {
        let file = src.join(platform);
        write_exec(&file, script, 0o644);
        binaries.insert(platform.to_string(), [("demo".to_string(), file)].into());
    }
    let n = xtask::layout::ship_binaries(dir, "demo", &binaries, xtask::layout::Packing::Brotli)
        .unwrap();
    assert_eq!(n, scripts.len());
}

/// The packager ships one stream for all platforms: the first run unpacks
/// this platform's binary (with Node's own zlib) and runs it; later runs
/// use the unpacked binary.
#[test]
fn a_packed_binary_is_unpacked_once_and_run() {
    let dir = task_dir("packed", None);
    let script = "#!/bin/sh\necho packed-ran \"$@\"\nexit 3\n";
    pack(
        &dir,
        &[
            ("linux-x64", script),
            ("win32-x64", "MZ windows"),
            ("darwin-arm64", "macho"),
        ],
    );
    let out = node(&dir).arg("a1").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "packed-ran a1\n");
    assert_eq!(out.status.code(), Some(3));
    let unpacked = dir.join("bin/linux-x64/demo");
    assert_eq!(std::fs::read_to_string(&unpacked).unwrap(), script);
    // Only this platform's binary is unpacked, and no temporary file is
    // left behind.
    let names: Vec<String> = std::fs::read_dir(dir.join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(
        std::fs::read_dir(dir.join("bin/linux-x64"))
            .unwrap()
            .count(),
        1
    );
    // The second run does not unpack again.
    std::fs::write(dir.join("bin/demo.br"), b"not brotli").unwrap();
    let out = node(&dir).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "packed-ran\n");

    // A damaged stream fails the task with a clear message.
    std::fs::remove_file(&unpacked).unwrap();
    let out = node(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "##vso[task.logissue type=error;]Cannot unpack the linux-x64 binary from "
        ) && text.contains("demo.br"),
        "{text}"
    );
}

/// A platform the stream does not hold is named with those it does.
#[test]
fn a_packed_task_without_this_platform_names_the_ones_it_has() {
    let dir = task_dir("packed-missing", None);
    pack(&dir, &[("win32-x64", "MZ"), ("darwin-arm64", "macho")]);
    let out = node(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(
            "##vso[task.logissue type=error;]Demo has no binary for this agent's platform linux-x64. Platforms shipped: darwin-arm64, win32-x64."
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Two jobs on one agent start the same task at the same moment, before
/// either has unpacked it: both run the right binary, nothing half-written
/// is ever run, no temporary file is left.
#[test]
fn tasks_started_at_once_unpack_safely() {
    let dir = task_dir("packed-race", None);
    // A binary large enough that writing it takes a moment.
    let script = format!(
        "#!/bin/sh\necho raced\nexit 0\n#{}\n",
        "x".repeat(4_000_000)
    );
    pack(&dir, &[("linux-x64", &script)]);
    let children: Vec<_> = (0..6)
        .map(|_| node(&dir).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "raced\n");
        assert_eq!(out.status.code(), Some(0));
    }
    let names: Vec<String> = std::fs::read_dir(dir.join("bin/linux-x64"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["demo"]);
}

/// A read-only task folder (made immutable with `chattr +i`, which binds
/// root too): the binary is unpacked into this user's private folder under
/// TMPDIR, a tampered copy there is replaced, and a folder others can write
/// to is refused.
#[test]
fn a_read_only_task_folder_unpacks_into_a_private_temp_folder() {
    use std::os::unix::fs::PermissionsExt;
    let dir = task_dir("readonly", None);
    let script = "#!/bin/sh\necho private-ran\n";
    pack(&dir, &[("linux-x64", script)]);
    let bin = dir.join("bin");
    let locked = Command::new("chattr").arg("+i").arg(&bin).status();
    if !locked.is_ok_and(|s| s.success()) {
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    let tmp = temp("readonly-tmp");
    let run = || node(&dir).env("TMPDIR", &tmp).output().unwrap();
    let out = run();
    let base = tmp.join(format!("aws-pipeline-tasks-{}", unsafe { libc::getuid() }));
    let private = base.join("Demo-0.0.0-linux-x64/demo");
    // Unlock whatever happens, or the folder cannot be removed.
    let result = std::panic::catch_unwind(|| {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "private-ran\n");
        assert_eq!(std::fs::read_to_string(&private).unwrap(), script);
        assert_eq!(
            std::fs::metadata(&base).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Same size, other content: replaced, not run.
        let evil = format!("#!/bin/sh\necho {}\n", "e".repeat(script.len() - 16));
        assert_eq!(evil.len(), script.len());
        std::fs::write(&private, &evil).unwrap();
        assert_eq!(String::from_utf8_lossy(&run().stdout), "private-ran\n");
        // A temp folder others can write to is not used.
        std::fs::remove_file(&private).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let out = run();
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("is not a private folder of this user"),
            "{text}"
        );
    });
    let _ = Command::new("chattr").arg("-i").arg(&bin).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The launcher undoes the packager's branch filters exactly: bytes full
/// of call, jump and bl opcodes (and 00/FF) filtered in Rust come back
/// from node's unpacking byte for byte, for each filter.
#[test]
fn branch_filters_are_undone_by_the_launcher() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let original: Vec<u8> = (0..200_003)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            [0xE8, 0xE9, 0x00, 0xFF, 0x94, 0x97, (x >> 24) as u8][(x % 7) as usize]
        })
        .collect();
    for filter in ["x86", "arm64"] {
        let dir = task_dir(&format!("filter-{filter}"), None);
        let mut data = original.clone();
        xtask::filters::apply(filter, &mut data, false);
        assert_ne!(data, original);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("demo.br"),
            xtask::layout::brotli_compress_at(&data, 5).unwrap(),
        )
        .unwrap();
        let index = serde_json::json!({
            "stream": "demo.br",
            "platforms": { "linux-x64": {
                "file": "demo", "offset": 0, "size": data.len(), "filter": filter
            } }
        });
        std::fs::write(bin.join("index.json"), index.to_string()).unwrap();
        // The bytes are no program: the spawn fails once they are unpacked.
        let _ = node(&dir).output().unwrap();
        let unpacked = std::fs::read(bin.join("linux-x64/demo")).unwrap();
        assert!(unpacked == original, "{filter}: node's unpacking differs");
    }
}

/// A binary that dies by a signal of its own (a shipped build aborts on a
/// panic without printing anything) fails the task with a message that
/// names the signal; the exit code still says which signal it was.
#[test]
fn a_binary_that_dies_on_its_own_fails_the_task_with_a_message() {
    let dir = task_dir("crash", Some("#!/bin/sh\necho working\nkill -ILL $$\n"));
    let out = node(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "working\n\
         ##vso[task.logissue type=error;]Demo stopped abnormally (SIGILL) on linux-x64: this is a bug in the task; please report it with this log.\n\
         ##vso[task.complete result=Failed;]Demo stopped abnormally (SIGILL) on linux-x64: this is a bug in the task; please report it with this log.\n"
    );
}
