//! A real container registry and a real container client for the ECR
//! tasks: moto serves ECR's control plane (repositories, authorization
//! tokens) but not the registry protocol, so the tests run Debian's
//! `docker-registry` (the CNCF distribution registry) on a free loopback
//! port, with basic authentication for the password moto's tokens carry,
//! and drive it with Debian's `podman`, its storage, registry settings and
//! login kept in a folder of the test's own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::http::{HttpServer, forward_to};

/// moto's ECR tokens decode to `AWS:<account>-auth-token`.
pub const MOTO_PASSWORD: &str = "123456789012-auth-token";

/// bcrypt of [`MOTO_PASSWORD`] (cost 5), made once with Python's bcrypt:
/// the registry's htpasswd file takes nothing else.
const HTPASSWD: &str = "AWS:$2a$05$YpL.J7phthqaBuBtwTZpPuvkpORjagVZB1cFDRHtuDp.dvhlGVO3K\n";

/// The token moto hands out: base64 of `AWS:<password>`.
pub fn moto_token() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"))
}

fn tool(name: &str, variable: &str) -> PathBuf {
    if let Ok(p) = std::env::var(variable) {
        return PathBuf::from(p);
    }
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: the ECR tests need Debian's podman and docker-registry packages \
         (cargo xtask test installs them), or {variable} naming it"
    )
}

/// A `docker-registry` on `127.0.0.1:<port>`, ended when dropped.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub host: String,
    child: Child,
}

impl Registry {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(crate::unique("registry"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("htpasswd"), HTPASSWD).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             auth:\n  htpasswd:\n    realm: test\n    path: {}\nhttp:\n  addr: {host}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(tool("docker-registry", "DOCKER_REGISTRY"))
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry { host, child };
        let start = Instant::now();
        while registry.get("/v2/", &[]).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer on {} (log: {})",
                registry.host,
                dir.join("registry.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// A GET or HEAD with the registry's credentials: (status, headers, body).
    fn get(&self, path: &str, headers: &[&str]) -> Option<(u16, String, String)> {
        let mut conn = TcpStream::connect(&self.host).ok()?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n",
            self.host
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).ok()?;
        let mut raw = String::new();
        conn.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, head.to_string(), body.to_string()))
    }

    /// The tags of `repository`, sorted.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let Some((200, _, body)) = self.get(&format!("/v2/{repository}/tags/list"), &[]) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The manifest digest of `repository:reference`, as the registry
    /// computes it.
    pub fn digest(&self, repository: &str, reference: &str) -> Option<String> {
        let (status, head, _) = self.get(
            &format!("/v2/{repository}/manifests/{reference}"),
            &[
                "Accept: application/vnd.oci.image.manifest.v1+json",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
            ],
        )?;
        (status == 200).then_some(())?;
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A podman of the test's own: storage, registry settings (the test
/// registry over plain HTTP) and logins in one folder, and a PATH that
/// holds podman alone (this machine's docker has no daemon to talk to).
pub struct Podman {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Podman {
    pub fn new(registry: &Registry) -> Self {
        let dir = std::env::temp_dir().join(crate::unique("podman"));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(tool("podman", "PODMAN"), bin.join("podman")).unwrap();
        std::fs::write(
            dir.join("registries.conf"),
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                registry.host
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("storage").display(),
                dir.join("run").display()
            ),
        )
        .unwrap();
        let env = vec![
            ("PATH".to_string(), bin.display().to_string()),
            (
                "CONTAINERS_REGISTRIES_CONF".to_string(),
                dir.join("registries.conf").display().to_string(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".to_string(),
                dir.join("storage.conf").display().to_string(),
            ),
            (
                "REGISTRY_AUTH_FILE".to_string(),
                dir.join("auth.json").display().to_string(),
            ),
        ];
        Podman { dir, bin, env }
    }

    /// Runs podman for the test's own set-up; panics unless it succeeds.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(self.bin.join("podman"))
            .args(args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .expect("podman starts");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether podman has `reference` locally.
    pub fn has(&self, reference: &str) -> bool {
        Command::new(self.bin.join("podman"))
            .args(["image", "exists", reference])
            .env_clear()
            .envs(self.env.iter().cloned())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A small image of its own (one layer holding `content`), imported
    /// under `reference`; returns its id.
    pub fn image(&self, reference: &str, content: &str) -> String {
        let root = self.dir.join(crate::unique("rootfs"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("content.txt"), content).unwrap();
        let tar = root.with_extension("tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        self.run(&["import", &tar.display().to_string(), reference]);
        self.run(&["image", "inspect", "--format", "{{.Id}}", reference])
            .trim()
            .to_string()
    }

    /// Whether the client still holds a login for `host`.
    pub fn logged_in(&self, host: &str) -> bool {
        std::fs::read_to_string(self.dir.join("auth.json")).is_ok_and(|auth| auth.contains(host))
    }
}

/// ECR's control plane as the tasks see it in these tests: moto, with the
/// authorization token's `proxyEndpoint` pointing at `registry` (and its
/// password replaced by `password` when given, to see a login denied).
pub fn ecr_front(moto: &str, registry: &Registry, password: Option<&str>) -> HttpServer {
    let moto = moto.to_string();
    let endpoint = format!("https://{}", registry.host);
    let password = password.map(str::to_string);
    HttpServer::start(move |req| {
        let mut resp = forward_to(&moto, req);
        if req.header("x-amz-target")
            == Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
        {
            let mut v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
            if let Some(list) = v["authorizationData"].as_array_mut() {
                for data in list {
                    data["proxyEndpoint"] = endpoint.clone().into();
                    if let Some(p) = &password {
                        data["authorizationToken"] = base64::engine::general_purpose::STANDARD
                            .encode(format!("AWS:{p}"))
                            .into();
                    }
                }
            }
            resp.body = v.to_string().into_bytes();
        }
        resp
    })
}
