//! The tools the tests and benchmarks need, installed into `.tools/` (git
//! ignored) on first use: nothing is expected on the machine but Rust,
//! Python 3 and Node.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Pinned: the tests know this version's behaviour and gaps.
pub const MOTO_VERSION: &str = "5.2.5";

/// The workspace. `cargo run` names xtask's folder at run time; the path
/// compiled in is only a fallback (a binary reused from a build of another
/// checkout, through a shared target folder, would point there).
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// The project-local virtualenv `.tools/venv` with `packages` installed.
pub fn venv(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    venv_at(root, "venv", packages)
}

/// A project-local virtualenv `.tools/<name>` with `packages` installed; a
/// stamp file per package set makes the second run instant.
pub fn venv_at(root: &Path, name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = tools_dir(root).join(name);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        std::fs::create_dir_all(tools_dir(root))?;
        run(Command::new(python3()).args(["-m", "venv"]).arg(&venv))
            .context("creating the virtualenv (is python3 with venv installed?)")?;
    }
    let stamp = venv.join(format!(
        ".installed-{}",
        packages.join("+").replace(['[', ']', '=', '/'], "_")
    ));
    if !stamp.exists() {
        println!(
            "xtask: installing {} into {}",
            packages.join(" "),
            venv.display()
        );
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages))
        .with_context(|| format!("pip install {}", packages.join(" ")))?;
        std::fs::write(&stamp, "")?;
    }
    Ok(venv)
}

fn python3() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `GET path` on 127.0.0.1:port answers with any HTTP status.
pub fn wait_http(port: u16, path: &str, child: &mut Child, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before it was ready ({status})");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 12];
                if s.read(&mut buf)
                    .is_ok_and(|n| n >= 12 && buf.starts_with(b"HTTP/1."))
                {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("{what} did not answer on port {port} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A background process killed when dropped.
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pinned forward proxy for the agent-proxy tests (Basic auth, CONNECT, an
/// access log).
pub const PROXY_PY_VERSION: &str = "2.4.10";

/// proxy.py's command, installed into the project's virtualenv.
pub fn proxy_py(root: &Path) -> Result<PathBuf> {
    let venv = venv(root, &[&format!("proxy.py=={PROXY_PY_VERSION}")])?;
    Ok(venv.join("bin").join("proxy"))
}

/// Pinned AWS CLI (v1, from PyPI: v2 is not published there) for the
/// AWSCLI task's tests and the S3 benchmarks.
pub const AWSCLI: &str = "awscli==1.46.3";

/// A folder holding only `aws`, the pinned CLI from its own virtualenv
/// (its botocore pin must not move moto's): the AWSCLI tests put this
/// folder, and not the virtualenv's, on the task's PATH.
pub fn aws_cli_dir(root: &Path) -> Result<PathBuf> {
    let venv = venv_at(root, "awscli", &[AWSCLI])?;
    let dir = tools_dir(root).join("awscli-bin");
    let link = dir.join("aws");
    if !link.exists() {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(venv.join("bin").join("aws"), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(dir)
}

/// moto's server on a free loopback port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    _process: Background,
}

impl Moto {
    pub fn start(root: &Path) -> Result<Moto> {
        let venv = venv(root, &[&format!("moto[server]=={MOTO_VERSION}")])?;
        let port = free_port()?;
        let log = std::fs::File::create(tools_dir(root).join("moto.log"))?;
        let mut child = Command::new(venv.join("bin").join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        wait_http(port, "/moto-api/", &mut child, "moto_server")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        // Lambda invocations echo the event instead of needing Docker.
        post_json(
            port,
            "/moto-api/config",
            r#"{"lambda":{"use_docker":false}}"#,
        )?;
        Ok(Moto {
            endpoint,
            _process: Background(child),
        })
    }
}

fn post_json(port: u16, path: &str, body: &str) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let ok = resp
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if !ok {
        bail!(
            "moto {path} answered: {}",
            resp.lines().next().unwrap_or("")
        );
    }
    Ok(())
}

/// Microsoft's packager, pinned, in `.tools/node` (for the tests that compare
/// our .vsix with its output).
pub const TFX_VERSION: &str = "0.23.1";

pub fn tfx(root: &Path) -> Result<PathBuf> {
    let prefix = tools_dir(root).join("node");
    let bin = prefix.join("node_modules/.bin/tfx");
    let stamp = prefix.join(format!(".installed-tfx-{TFX_VERSION}"));
    if !bin.exists() || !stamp.exists() {
        std::fs::create_dir_all(&prefix)?;
        println!(
            "xtask: installing tfx-cli@{TFX_VERSION} into {}",
            prefix.display()
        );
        run(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(format!("tfx-cli@{TFX_VERSION}")))
        .context("npm install tfx-cli (is Node.js with npm installed?)")?;
        std::fs::write(&stamp, "")?;
    }
    Ok(bin)
}

/// One task folder as the agent would see it: task.json (stamped), icon,
/// launcher, and the binaries.
pub fn stage_task(
    root: &Path,
    task: &crate::layout::TaskSource,
    binaries: &crate::layout::Binaries,
    dest: &Path,
    packing: crate::layout::Packing,
) -> Result<()> {
    use crate::layout;
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    std::fs::create_dir_all(dest)?;
    let version = layout::workspace_version(root)?;
    let json = layout::stamp_task_json(layout::read_json(&task.dir.join("task.json"))?, &version)?;
    layout::write_json(&dest.join("task.json"), &json)?;
    std::fs::copy(root.join("tasks/launcher/run.js"), dest.join("run.js"))?;
    layout::ship_binaries(dest, &task.binary, binaries, packing)?;
    Ok(())
}

/// Cold start through the launcher, from spawn to exit, on an input error
/// that fails before any network call; against bare `node -e 0`.
pub fn bench_startup(root: &Path) -> Result<()> {
    use crate::{build, layout};
    const ROUNDS: usize = 40;
    let tasks = layout::tasks(root)?;
    let binaries = build::build(root, &tasks, &[None], "release")?;
    let path = std::env::var("PATH").unwrap_or_default();
    let node_ms = time_median(ROUNDS, || {
        Command::new("node")
            .args(["-e", "0"])
            .env_clear()
            .env("PATH", &path)
            .output()
            .map(|_| ())
    })?;
    println!(
        "\n{:<32} {:>10} {:>10} {:>10}",
        "task (input error, no network)", "median ms", "min ms", "binary MB"
    );
    println!(
        "{:<32} {:>10.1} {:>10} {:>10}",
        "node -e 0",
        node_ms.0,
        format!("{:.1}", node_ms.1),
        "-"
    );
    for task in &tasks {
        let dir = root.join("target/xtask/bench").join(&task.name);
        stage_task(root, task, &binaries, &dir, layout::Packing::Plain)?;
        let script = dir.join("run.js");
        let (median, min) = time_median(ROUNDS, || {
            let out = Command::new("node")
                .arg(&script)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains("result=Failed") {
                return Err(std::io::Error::other(format!(
                    "expected an input error, got: {text}"
                )));
            }
            Ok(())
        })?;
        let size = binaries
            .values()
            .next()
            .and_then(|b| b.get(&task.binary))
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .unwrap_or(0);
        println!(
            "{:<32} {:>10.1} {:>10.1} {:>10.2}",
            task.name,
            median,
            min,
            size as f64 / 1e6
        );
    }
    println!("\n({ROUNDS} runs each; the incumbent's tasks take 470 to 580 ms)");
    Ok(())
}

fn time_median(rounds: usize, mut f: impl FnMut() -> std::io::Result<()>) -> Result<(f64, f64)> {
    // Warm the page cache first: the first runs measure the disk, not us.
    for _ in 0..3 {
        f()?;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((times[rounds / 2], times[0]))
}
