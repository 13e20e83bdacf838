//! A real forward proxy (proxy.py from PyPI, installed by `cargo xtask test`
//! and named by `PROXY_PY`) on a free loopback port, with or without Basic
//! authentication; its access log shows what went through it.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ForwardProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: PathBuf,
    child: Child,
}

impl ForwardProxy {
    /// `credentials` as `user:password` turns on Basic authentication.
    pub fn start(credentials: Option<&str>) -> Self {
        let binary = std::env::var("PROXY_PY").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!(
                "PROXY_PY is not set: the proxy tests need the proxy.py that `cargo xtask test` installs. \
                 Run `cargo xtask test`."
            )
        });
        let dir = std::env::temp_dir().join(crate::unique("proxy"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let port_file = dir.join("port");
        let mut cmd = Command::new(binary);
        cmd.args(["--hostname", "127.0.0.1", "--port", "0"])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log-file")
            .arg(&log)
            .args(["--num-workers", "1", "--num-acceptors", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: dropping the proxy stops its workers too.
            .process_group(0);
        if let Some(c) = credentials {
            cmd.args(["--basic-auth", c]);
        }
        let mut child = cmd.spawn().expect("proxy.py starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("proxy.py exited at start ({status})");
            }
            assert!(Instant::now() < deadline, "proxy.py did not start in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        ForwardProxy {
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        }
    }

    /// The access log lines (`<client> - <METHOD> <host:port><path> - ...`).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("access_log"))
            .map(str::to_string)
            .collect()
    }

    /// Access log lines for requests to `host_port` (e.g. `127.0.0.1:5000`).
    /// The proxy writes a line when a connection ends, so this waits up to
    /// 10 s for the first one.
    pub fn requests_to(&self, host_port: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<String> = self
                .access_log()
                .into_iter()
                .filter(|l| l.contains(&format!(" {host_port}")))
                .collect();
            if !lines.is_empty() || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) of the process group we created.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
