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

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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

/// A project-local virtualenv with `packages` installed; a stamp file per
/// package set makes the second run instant.
pub fn venv(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    let venv = tools_dir(root).join("venv");
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
