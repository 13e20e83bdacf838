//! Faults moto cannot produce, injected by a proxy in front of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use test_support::{Response, faulty_proxy};

use crate::*;

#[test]
fn a_multipart_upload_that_fails_half_way_is_aborted() {
    let b = bucket();
    let big = data(20 * 1024 * 1024, 11);
    let src = tree(&[("big.bin", &big), ("ok.txt", b"fine")]);
    // Part 2 always fails: after the retries the upload must be aborted.
    let p = faulty_proxy(&test_support::moto(), |req| {
        let part2 = req.target.contains("partNumber=2&") || req.target.ends_with("partNumber=2");
        (req.method == "PUT" && part2).then(|| {
            Response::new(
                500,
                "<Error><Code>InternalError</Code><Message>injected</Message></Error>",
            )
        })
    });
    let run = upload(&b, &src)
        .input("endpointUrl", &p.url)
        .set("AWS_MAX_ATTEMPTS", "2")
        .run(bin());
    run.assert_failed_with(&format!("1 of 2 uploads failed; s3://{b}/big.bin: part 2:"));
    let aborted = p
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.target.contains("uploadId="));
    assert!(aborted, "AbortMultipartUpload was sent");
    let pending = block_on(s3().list_multipart_uploads().bucket(&b).send()).unwrap();
    assert!(pending.uploads().is_empty(), "no orphaned parts");
    assert_eq!(
        keys(&b),
        ["ok.txt"],
        "the other file is there, the failed one is not"
    );
}

/// Throttling, a server error and a dropped connection, once each: the SDK's
/// retries carry every file through.
#[test]
fn transient_errors_are_retried() {
    let b = bucket();
    let src = tree(&[
        ("throttled.txt", b"1"),
        ("server-error.txt", b"2"),
        ("dropped.txt", b"3"),
    ]);
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let p = faulty_proxy(&test_support::moto(), move |req| {
        if req.method != "PUT" {
            return None;
        }
        let name = req.path().rsplit('/').next().unwrap_or("").to_string();
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(name.clone()).or_default();
        *n += 1;
        match (name.as_str(), *n) {
            ("throttled.txt", 1) => Some(Response::new(
                503,
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )),
            ("server-error.txt", 1) => Some(Response::new(
                500,
                "<Error><Code>InternalError</Code><Message>oops</Message></Error>",
            )),
            ("dropped.txt", 1) => Some(Response::drop_connection()),
            _ => None,
        }
    });
    upload(&b, &src)
        .input("endpointUrl", &p.url)
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        keys(&b),
        ["dropped.txt", "server-error.txt", "throttled.txt"]
    );
    for name in ["throttled.txt", "server-error.txt", "dropped.txt"] {
        let attempts = p
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path().ends_with(name))
            .count();
        assert_eq!(attempts, 2, "{name}");
    }
}

#[test]
fn a_persistent_error_names_the_key_and_the_reason() {
    let b = bucket();
    let src = tree(&[("denied.txt", b"1")]);
    let p = faulty_proxy(&test_support::moto(), |req| {
        (req.method == "PUT").then(|| Response::new(403, "<Error><Code>AccessDenied</Code><Message>Access Denied by policy</Message></Error>"))
    });
    upload(&b, &src)
        .input("endpointUrl", &p.url)
        .run(bin())
        .assert_failed_with(&format!("1 of 1 uploads failed; s3://{b}/denied.txt: "))
        .assert_failed_with("AccessDenied");
}

/// The agent cancelling the step in the middle of a multipart upload
/// (SIGTERM, as the launcher passes it on): the upload is aborted, the task
/// fails saying so.
#[test]
fn a_cancelled_multipart_upload_is_aborted() {
    let b = bucket();
    let big = data(24 * 1024 * 1024, 13);
    let src = tree(&[("big.bin", &big)]);
    // Parts are slow to answer, so the task is mid-upload when cancelled.
    let p = faulty_proxy(&test_support::moto(), |req| {
        if req.method == "PUT" && req.target.contains("partNumber=") {
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        None
    });
    let task = upload(&b, &src)
        .input("endpointUrl", &p.url)
        .input("maxConcurrency", "1")
        .spawn(bin())
        .after("the multipart upload's start", || {
            p.requests().iter().any(|r| r.target.contains("uploads"))
        });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cancelled = std::time::Instant::now();
    task.cancel();
    let run = task.wait();
    assert!(
        cancelled.elapsed() < std::time::Duration::from_secs(30),
        "the task took {:?} to stop",
        cancelled.elapsed()
    );
    let log = &run.stdout;
    assert_eq!(run.code, Some(1), "{log}");
    assert!(
        log.contains("Cancelled (SIGTERM); 1 unfinished multipart upload(s) aborted."),
        "{log}\n{}",
        run.stderr
    );
    assert!(log.contains("##vso[task.complete result=Failed;]"), "{log}");
    assert!(
        p.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.target.contains("uploadId="))
    );
    let pending = block_on(s3().list_multipart_uploads().bucket(&b).send()).unwrap();
    assert!(pending.uploads().is_empty(), "no orphaned parts");
    assert!(keys(&b).is_empty());
}
