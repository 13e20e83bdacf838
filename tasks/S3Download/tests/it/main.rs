//! S3Download against moto.

use std::path::{Path, PathBuf};

use test_support::s3::s3;
use test_support::{TaskEnv, block_on, unique};

fn bucket() -> String {
    test_support::s3::bucket("dl")
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_s3download"))
}

fn put(bucket: &str, key: &str, body: &[u8]) {
    block_on(
        s3().put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send(),
    )
    .unwrap();
}

fn out_dir() -> PathBuf {
    std::env::temp_dir().join(unique("out"))
}

fn download(bucket: &str, target: &Path) -> TaskEnv {
    TaskEnv::moto()
        .input("bucketName", bucket)
        .input("targetFolder", target.to_str().unwrap())
        .input("globExpressions", "**")
        .input("forcePathStyleAddressing", "true")
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// S3Upload (in-process, its library) then S3Download: the same bytes.
#[test]
fn round_trip_through_both_tasks_is_byte_for_byte() {
    let b = bucket();
    let src = std::env::temp_dir().join(unique("rt-src"));
    let big = data(18 * 1024 * 1024 + 7, 5);
    for (rel, content) in [
        ("a.txt", b"alpha".to_vec()),
        ("deep/er/b.bin", data(70_000, 9)),
        ("big/large.bin", big.clone()),
    ] {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let pairs = TaskEnv::moto()
        .input("bucketName", &b)
        .input("sourceFolder", src.to_str().unwrap())
        .input("globExpressions", "**")
        .input("targetFolder", "rt")
        .input("forcePathStyleAddressing", "true")
        .input("endpointUrl", &test_support::moto())
        .unset("AWS_ENDPOINT_URL");
    let (console, log) = vsts_task::Console::capture(false);
    let task = vsts_task::Task::new("S3Upload", vsts_task::Env::from_pairs(pairs.0), console);
    let result = block_on(s3upload::run(task));
    assert!(result.is_ok(), "{result:?}\n{}", log.text());

    let out = out_dir();
    download(&b, &out)
        .input("sourceFolder", "rt")
        .run(bin())
        .assert_succeeded();
    // As the original: every object under its full key, sourceFolder included.
    assert_eq!(
        files(&out),
        ["rt/a.txt", "rt/big/large.bin", "rt/deep/er/b.bin"]
    );
    for rel in ["a.txt", "deep/er/b.bin", "big/large.bin"] {
        assert!(
            std::fs::read(out.join("rt").join(rel)).unwrap()
                == std::fs::read(src.join(rel)).unwrap(),
            "{rel} differs"
        );
    }
}

#[test]
fn more_than_a_thousand_keys_are_all_downloaded() {
    let b = bucket();
    block_on(async {
        let client = s3();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..1005 {
            let client = client.clone();
            let b = b.clone();
            set.spawn(async move {
                client
                    .put_object()
                    .bucket(&b)
                    .key(format!("many/k{i:04}.txt"))
                    .body(b"x".to_vec().into())
                    .send()
                    .await
                    .unwrap();
            });
        }
        while set.join_next().await.is_some() {}
    });
    let out = out_dir();
    let run = download(&b, &out).input("sourceFolder", "many/").run(bin());
    run.assert_succeeded();
    assert_eq!(files(&out).len(), 1005);
}

#[test]
fn patterns_flatten_and_folder_markers() {
    let b = bucket();
    put(&b, "p/keep/a.txt", b"a");
    put(&b, "p/keep/b.log", b"b");
    put(&b, "p/other/c.txt", b"c");
    put(&b, "p/folder/", b"");
    let out = out_dir();
    download(&b, &out)
        .input("sourceFolder", "p")
        .input("globExpressions", "**/*.txt\n!other/**")
        .run(bin())
        .assert_succeeded();
    assert_eq!(files(&out), ["p/keep/a.txt"]);
    let all = out_dir();
    download(&b, &all)
        .input("sourceFolder", "p")
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        files(&all),
        ["p/keep/a.txt", "p/keep/b.log", "p/other/c.txt"]
    );
    assert!(
        all.join("p/folder").is_dir(),
        "a folder marker makes a folder"
    );
    let flat = out_dir();
    download(&b, &flat)
        .input("sourceFolder", "p")
        .input("flattenFolders", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(files(&flat), ["a.txt", "b.log", "c.txt"]);
}

/// The layout of the original task: `targetFolder/<full key>`, whatever the
/// depth of `sourceFolder`; the patterns apply below it.
#[test]
fn nested_source_folders_keep_the_full_key() {
    let b = bucket();
    put(&b, "builds/2024/app/bin/x.dll", b"x");
    put(&b, "builds/2024/app/readme.md", b"r");
    put(&b, "builds/2024/other.txt", b"o");
    put(&b, "builds/2024/app/old_$folder$", b"");
    let out = out_dir();
    download(&b, &out)
        .input("sourceFolder", "builds/2024/app")
        .input("globExpressions", "bin/**")
        .run(bin())
        .assert_succeeded();
    assert_eq!(files(&out), ["builds/2024/app/bin/x.dll"]);
    let flat = out_dir();
    download(&b, &flat)
        .input("sourceFolder", "builds/2024")
        .input("flattenFolders", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(files(&flat), ["other.txt", "readme.md", "x.dll"]);
}

#[test]
fn keys_that_escape_the_target_are_refused_before_any_download() {
    let b = bucket();
    put(&b, "ok.txt", b"ok");
    put(&b, "../../evil.txt", b"evil");
    let out = out_dir();
    download(&b, &out)
        .run(bin())
        .assert_failed_with("Refused 1 key(s) that would escape");
    assert!(files(&out).is_empty(), "nothing half-done");
    assert!(!out.parent().unwrap().join("evil.txt").exists());
}

#[test]
fn overwrite_false_stops_before_downloading() {
    let b = bucket();
    put(&b, "a.txt", b"new");
    put(&b, "b.txt", b"new");
    let out = out_dir();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.txt"), b"old").unwrap();
    download(&b, &out)
        .input("overwrite", "false")
        .run(bin())
        .assert_failed_with("1 file(s) already exist and overwrite is false");
    assert_eq!(files(&out), ["a.txt"], "nothing downloaded");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"old");
    download(&b, &out).run(bin()).assert_succeeded();
    assert_eq!(files(&out), ["a.txt", "b.txt"]);
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"new");
    // A second run over the same layout, overwrite on by default.
    put(&b, "a.txt", b"newer");
    download(&b, &out).run(bin()).assert_succeeded();
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"newer");
}

/// A body cut short by the network: the task fails, the file already at
/// the destination is untouched, and no partial or temporary file is left.
#[test]
fn a_download_cut_short_leaves_no_partial_file() {
    let b = bucket();
    put(&b, "dir/cut.bin", &data(256 * 1024, 9));
    let proxy = test_support::faulty_proxy(&test_support::moto(), |req| {
        (req.method == "GET" && req.path().ends_with("/dir/cut.bin")).then(|| {
            test_support::Response::new(200, vec![7u8; 1000])
                .header("Content-Length", &(256 * 1024).to_string())
        })
    });
    let out = out_dir();
    std::fs::create_dir_all(out.join("dir")).unwrap();
    std::fs::write(out.join("dir/cut.bin"), b"previous").unwrap();
    download(&b, &out)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("overwrite", "true")
        .run(bin())
        .assert_failed_with(
            "dir/cut.bin: the connection failed after 1000 of 262144 bytes, 3 times in a row",
        );
    assert_eq!(files(&out), ["dir/cut.bin"]);
    assert_eq!(std::fs::read(out.join("dir/cut.bin")).unwrap(), b"previous");
}

/// Bodies cut short once, for a small object and for one part of a large
/// one: each is resumed from the bytes already written, and the files are
/// intact.
#[test]
fn a_body_cut_short_once_is_resumed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let b = bucket();
    let small = data(300 * 1024, 11);
    let large = data(20 * 1024 * 1024 + 3, 12);
    put(&b, "small.bin", &small);
    put(&b, "large.bin", &large);
    let (small_cut, part_cut) = (AtomicBool::new(false), AtomicBool::new(false));
    // What arrives before each cut is the object's own bytes.
    let small_head = small[..1000].to_vec();
    let part_head = large[8388608..8388608 + 5000].to_vec();
    let proxy = test_support::faulty_proxy(&test_support::moto(), move |req| {
        if req.method != "GET" {
            return None;
        }
        if req.path().ends_with("/small.bin") && !small_cut.swap(true, Ordering::SeqCst) {
            return Some(
                test_support::Response::new(200, small_head.clone())
                    .header("Content-Length", &(300 * 1024).to_string()),
            );
        }
        let second_part = req
            .header("range")
            .is_some_and(|r| r.starts_with("bytes=8388608-"));
        if req.path().ends_with("/large.bin")
            && second_part
            && !part_cut.swap(true, Ordering::SeqCst)
        {
            let total = 20 * 1024 * 1024 + 3;
            return Some(
                test_support::Response::new(206, part_head.clone())
                    .header("Content-Length", "8388608")
                    .header("Content-Range", &format!("bytes 8388608-16777215/{total}")),
            );
        }
        None
    });
    let out = out_dir();
    let run = download(&b, &out)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .run(bin());
    run.assert_succeeded();
    // (Not assert_eq: a difference would print megabytes.)
    assert!(
        std::fs::read(out.join("small.bin")).unwrap() == small,
        "small.bin differs"
    );
    assert!(
        std::fs::read(out.join("large.bin")).unwrap() == large,
        "large.bin differs"
    );
    assert_eq!(files(&out), ["large.bin", "small.bin"]);
    assert!(
        run.stdout
            .contains("small.bin: the connection failed after 1000 of 307200 bytes"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("resuming from there"), "{}", run.stdout);
    // The resumed requests asked for the rest only, and for this object.
    let ranges: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/small.bin"))
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, ["bytes=1000-307199"]);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.header("range") == Some("bytes=8393608-16777215")),
        "the cut part resumes at its offset plus the 5000 bytes received"
    );
}

/// The agent cancelling the step mid-download: the task ends at once,
/// fails saying so, and leaves neither the file nor its temporary file.
#[test]
fn a_cancelled_download_leaves_no_temporary_file() {
    let b = bucket();
    put(&b, "slow.bin", &data(64 * 1024, 5));
    // The object is slow to answer, so the task is mid-download when cancelled.
    let proxy = test_support::faulty_proxy(&test_support::moto(), |req| {
        if req.method == "GET" && req.path().ends_with("/slow.bin") {
            std::thread::sleep(std::time::Duration::from_secs(5));
        }
        None
    });
    let out = out_dir();
    let has_part = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".part"))
        })
    };
    let task = download(&b, &out)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .spawn(bin())
        .after("the download's start", || has_part(&out));
    let cancelled = std::time::Instant::now();
    task.cancel();
    let run = task.wait();
    assert!(
        cancelled.elapsed() < std::time::Duration::from_secs(4),
        "the task took {:?} to stop",
        cancelled.elapsed()
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    run.assert_failed_with("Cancelled (SIGTERM); the unfinished downloads were discarded");
    assert_eq!(files(&out), Vec::<String>::new(), "nothing left behind");
}

#[test]
fn missing_bucket_and_bad_inputs() {
    let out = out_dir();
    let name = unique("nobucket").to_lowercase();
    download(&name, &out)
        .run(bin())
        .assert_failed_with(&format!(
            "Bucket '{name}' does not exist in region us-east-1"
        ));
    download("b", &out)
        .input("keyManagement", "customerManaged")
        .input("customerKey", "nothex")
        .run(bin())
        .assert_failed_with("Input 'customerKey' must be a 256-bit key");
    TaskEnv::moto()
        .input("bucketName", "b")
        .input("globExpressions", "**")
        .run(bin())
        .assert_failed_with("Input required: targetFolder");
}

#[test]
fn sse_c_objects_are_read_with_the_key() {
    let b = bucket();
    let key_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let p = test_support::recording_proxy(&test_support::moto());
    put(&b, "enc.txt", b"encrypted");
    let out = out_dir();
    let run = download(&b, &out)
        .input("endpointUrl", &p.url)
        .input("keyManagement", "customerManaged")
        .input("customerKey", key_hex)
        .run(bin());
    run.assert_succeeded();
    let get = p
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path().ends_with("enc.txt"))
        .unwrap();
    assert_eq!(
        get.header("x-amz-server-side-encryption-customer-algorithm"),
        Some("AES256")
    );
    test_support::assert_no_leaks(
        &run,
        &[key_hex, "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8="],
    );
}
