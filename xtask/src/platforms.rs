//! The agent platforms the extension ships for, and how this Linux x64
//! machine builds each of them.
//!
//! Every platform is built the same way: Debian's Rust toolchain (which
//! ships the standard library's source) rebuilds `std` for the target with
//! `-Z build-std`, size-optimised and without backtrace support, and a C
//! toolchain from the registries links it. zig (PyPI `ziglang`, driven by
//! `cargo-zigbuild`) links Linux against glibc 2.17 and macOS against its
//! own libSystem stubs plus the two frameworks written by [`macos_stubs`];
//! MinGW-w64 (Debian) links Windows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::layout::TaskSource;
use crate::tools;

/// How a platform's binaries are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linker {
    /// zig through cargo-zigbuild. `zig_target` is the triple plus what it
    /// cannot say (the oldest glibc to link against).
    Zig {
        zig_target: &'static str,
        macos_min: Option<&'static str>,
    },
    /// MinGW-w64's gcc.
    MinGw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// Node's `process.platform-process.arch`: the launcher's folder.
    pub name: &'static str,
    /// The Rust target built here.
    pub triple: &'static str,
    /// The Rust target a native build on that OS uses (`--native`).
    pub native_triple: &'static str,
    pub linker: Linker,
}

/// Every platform the extension ships for, in packing order.
///
/// - Linux binaries link against glibc 2.17 (any agent Linux: Amazon Linux
///   2, RHEL 7/8, Ubuntu 18.04 on) and nothing else but libc, libm, libdl,
///   libpthread and libgcc_s.
/// - Windows uses the `win7` flavour of the GNU target: the same code, but
///   it does not import `ProcessPrng` (Windows 10 and newer only), so it
///   runs on every Windows the agent runs on, and under Wine 8, where the
///   tests run the very binary that ships.
/// - macOS binaries are built for macOS 10.12 (x64) and 11.0 (arm64), the
///   oldest Rust supports; the linker signs arm64 ones ad hoc, as Apple
///   silicon requires.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "linux-x64",
        triple: "x86_64-unknown-linux-gnu",
        native_triple: "x86_64-unknown-linux-gnu",
        linker: Linker::Zig {
            zig_target: "x86_64-unknown-linux-gnu.2.17",
            macos_min: None,
        },
    },
    Platform {
        name: "linux-arm64",
        triple: "aarch64-unknown-linux-gnu",
        native_triple: "aarch64-unknown-linux-gnu",
        linker: Linker::Zig {
            zig_target: "aarch64-unknown-linux-gnu.2.17",
            macos_min: None,
        },
    },
    Platform {
        name: "win32-x64",
        triple: "x86_64-win7-windows-gnu",
        native_triple: "x86_64-pc-windows-msvc",
        linker: Linker::MinGw,
    },
    Platform {
        name: "darwin-x64",
        triple: "x86_64-apple-darwin",
        native_triple: "x86_64-apple-darwin",
        linker: Linker::Zig {
            zig_target: "x86_64-apple-darwin",
            macos_min: Some("10.12"),
        },
    },
    Platform {
        name: "darwin-arm64",
        triple: "aarch64-apple-darwin",
        native_triple: "aarch64-apple-darwin",
        linker: Linker::Zig {
            zig_target: "aarch64-apple-darwin",
            macos_min: Some("11.0"),
        },
    },
];

pub fn by_name(name: &str) -> Result<&'static Platform> {
    PLATFORMS.iter().find(|p| p.name == name).with_context(|| {
        format!(
            "unknown platform {name}; platforms: {}",
            PLATFORMS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `linux-x64,win32-x64` (or `all`) as platforms, in packing order.
pub fn parse_list(list: &str) -> Result<Vec<&'static Platform>> {
    if list == "all" {
        return Ok(PLATFORMS.iter().collect());
    }
    let mut out: Vec<&'static Platform> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = by_name(name)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_by_key(|p| PLATFORMS.iter().position(|q| q == *p));
    if out.is_empty() {
        bail!("no platform in '{list}'");
    }
    Ok(out)
}

impl Platform {
    pub fn exe_suffix(&self) -> &'static str {
        if self.name.starts_with("win32") {
            ".exe"
        } else {
            ""
        }
    }

    /// Flags for every crate of the target, `std` included.
    fn rustflags(&self, root: &Path, native: bool) -> Result<Vec<String>> {
        let mut flags = Vec::new();
        // panic=abort and no backtraces: unwind tables are dead weight
        // (about 11 % of a Linux binary). Windows x64 requires them.
        if !self.name.starts_with("win32") {
            flags.push("-Cforce-unwind-tables=no".to_string());
        }
        // Panic locations (file, line) are dropped, and derived `Debug`
        // prints the type or variant name only: SecretsManagerGetSecret for
        // linux-x64 went from 3.02 to 2.69 MB. Messages shown to users use
        // `Display` (tests of the shipped binaries under Wine and qemu run
        // with these flags). `--native` builds use a stable compiler.
        if !native {
            // A panic aborts at once, printing nothing: the panic machinery
            // (messages, hook, backtrace support) leaves the binary, and
            // the launcher reports the abnormal end in the task's place.
            // SecretsManagerGetSecret for linux-x64: 2,313,992 -> 2,211,040
            // bytes, packed 969,866 -> 934,545 (-3.6 %).
            flags.push("-Zunstable-options".to_string());
            flags.push("-Cpanic=immediate-abort".to_string());
            flags.push("-Zlocation-detail=none".to_string());
            flags.push("-Zfmt-debug=shallow".to_string());
        }
        if self.name.starts_with("darwin") && !native {
            let dir = macos_stubs(root)?;
            flags.push(format!("-Clink-arg=-F{}", dir.display()));
        }
        Ok(flags)
    }
}

/// Where the builds for the platforms go, one folder per Cargo profile
/// (apart from the host's own `target/`, so that a release package and a
/// test build never wait for each other's lock).
pub fn target_dir(root: &Path, profile: &str) -> PathBuf {
    root.join("target").join(format!("platforms-{profile}"))
}

/// Builds every task for `platform` with Cargo `profile` (`--native`: with
/// the machine's own toolchain, on that OS) and returns binary name → file.
pub fn build(
    root: &Path,
    tasks: &[TaskSource],
    platform: &Platform,
    profile: &str,
    native: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    let started = std::time::Instant::now();
    let triple = if native {
        platform.native_triple
    } else {
        platform.triple
    };
    let mut cmd;
    if native {
        cmd = Command::new(tools::cargo());
        cmd.args([
            "build",
            "--locked",
            "--profile",
            profile,
            "--target",
            triple,
        ]);
        cmd.env("CARGO_TARGET_DIR", target_dir(root, profile));
    } else {
        let cross = crate::toolchains::Cross::find(root)?;
        match platform.linker {
            Linker::Zig {
                zig_target,
                macos_min,
            } => {
                cmd = cross.cargo(root, profile, true);
                cmd.arg("build").args(["--target", zig_target]);
                if let Some(min) = macos_min {
                    cmd.env("MACOSX_DEPLOYMENT_TARGET", min);
                }
            }
            Linker::MinGw => {
                let var = triple.replace('-', "_");
                cmd = cross.cargo(root, profile, false);
                cmd.arg("build")
                    .args(["--target", triple])
                    .env(
                        format!("CARGO_TARGET_{}_LINKER", var.to_uppercase()),
                        "x86_64-w64-mingw32-gcc",
                    )
                    .env(format!("CC_{var}"), "x86_64-w64-mingw32-gcc")
                    .env(format!("AR_{var}"), "x86_64-w64-mingw32-ar");
            }
        }
        cmd.args(["--locked", "--profile", profile])
            .args(["-Z", "build-std=std,panic_abort"])
            .args(["-Z", "build-std-features=optimize_for_size"])
            .env("RUSTFLAGS", platform.rustflags(root, false)?.join(" "));
    }
    for t in tasks {
        cmd.args(["-p", &t.binary]);
    }
    cmd.current_dir(root);
    tools::run(&mut cmd).with_context(|| format!("building the tasks for {}", platform.name))?;
    let dir_profile = if profile == "dev" { "debug" } else { profile };
    let dir = target_dir(root, profile).join(triple).join(dir_profile);
    let mut bins = BTreeMap::new();
    for t in tasks {
        let path = dir.join(format!("{}{}", t.binary, platform.exe_suffix()));
        if !path.is_file() {
            bail!("the build did not produce {}", path.display());
        }
        bins.insert(t.binary.clone(), path);
    }
    println!(
        "xtask: built {} task(s) for {} in {:.0} s",
        tasks.len(),
        platform.name,
        started.elapsed().as_secs_f64()
    );
    Ok(bins)
}

/// Link-time stand-ins for the two macOS frameworks the binaries use
/// (Security and CoreFoundation, through rustls-native-certs, which reads
/// the system's trusted roots). A text stub (`.tbd`) names the framework's
/// install path and the symbols it exports; at run time macOS loads the real
/// framework. The symbol lists are every function and static that the
/// `-sys` crates in the lock file declare, so they follow dependency
/// updates without a hand-kept list.
pub fn macos_stubs(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target").join("macos-frameworks");
    let mut declared: Vec<String> = Vec::new();
    for krate in ["security-framework-sys", "core-foundation-sys"] {
        let src = crate_source(root, krate, Some("aarch64-apple-darwin"))?;
        declared.extend(declared_symbols(&src)?);
    }
    declared.sort();
    declared.dedup();
    let (cf, sec): (Vec<String>, Vec<String>) = declared
        .into_iter()
        .partition(|s| s.starts_with("CF") || s.starts_with("kCF") || s.starts_with("__CF"));
    for (framework, symbols) in [("Security", sec), ("CoreFoundation", cf)] {
        let fw = dir.join(format!("{framework}.framework"));
        std::fs::create_dir_all(&fw)?;
        let list = symbols
            .iter()
            .map(|s| format!("_{s}"))
            .collect::<Vec<_>>()
            .join(", ");
        let tbd = format!(
            "--- !tapi-tbd\ntbd-version: 4\ntargets: [ x86_64-macos, arm64-macos ]\n\
             install-name: '/System/Library/Frameworks/{framework}.framework/Versions/A/{framework}'\n\
             current-version: 1\nexports:\n  - targets: [ x86_64-macos, arm64-macos ]\n    \
             symbols: [ {list} ]\n...\n"
        );
        let path = fw.join(format!("{framework}.tbd"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(tbd.as_str()) {
            std::fs::write(&path, tbd)?;
        }
    }
    Ok(dir)
}

/// The source folder of a dependency, from `cargo metadata` (of the
/// dependency graph for `target` when given).
pub(crate) fn crate_source(root: &Path, name: &str, target: Option<&str>) -> Result<PathBuf> {
    let mut cmd = Command::new(tools::cargo());
    cmd.current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"]);
    if let Some(target) = target {
        cmd.args(["--filter-platform", target]);
    }
    let out = cmd.output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .with_context(|| format!("{name} is not in the workspace's dependencies"))
}

/// `pub fn NAME` and `pub static [mut] NAME` in every `.rs` file below `dir`.
fn declared_symbols(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                out.extend(symbols_in(&text));
            }
        }
    }
    Ok(out)
}

fn symbols_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("pub fn ")
            .or_else(|| line.strip_prefix("pub static mut "))
            .or_else(|| line.strip_prefix("pub static "));
        if let Some(rest) = rest {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists() {
        let names = |l: &str| {
            parse_list(l)
                .unwrap()
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("all").len(), 5);
        assert_eq!(
            names("darwin-arm64, linux-x64,linux-x64"),
            ["linux-x64", "darwin-arm64"]
        );
        assert!(
            parse_list("linux-riscv")
                .unwrap_err()
                .to_string()
                .contains("win32-x64")
        );
        for p in PLATFORMS {
            assert_eq!(crate::layout::platform_of(p.triple).unwrap(), p.name);
            assert_eq!(crate::layout::platform_of(p.native_triple).unwrap(), p.name);
        }
    }

    #[test]
    fn stub_symbols_are_the_declared_functions_and_statics() {
        let text = "extern \"C\" {\n    pub fn SecCertificateCopyData(c: X) -> Y;\n    pub static kCFAllocatorDefault: Z;\n    pub static mut kSecFoo: W;\n}\nfn private() {}\n";
        assert_eq!(
            symbols_in(text),
            ["SecCertificateCopyData", "kCFAllocatorDefault", "kSecFoo"]
        );
    }
}
