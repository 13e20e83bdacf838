//! Which files go where.

use test_support::{TaskEnv, assert_no_leaks};

use crate::*;

#[test]
fn a_tree_is_uploaded_with_keys_under_the_target_folder() {
    let b = bucket();
    let src = tree(&[
        ("index.html", b"<html></html>"),
        ("css/site.css", b"body{}"),
        (".well-known/security.txt", b"contact"),
        ("js/app.js", b"x"),
        ("js/app.js.map", b"{}"),
        ("README", b"no extension"),
    ]);
    let run = upload(&b, &src)
        .input("globExpressions", "**\n!**/*.map")
        .input("targetFolder", "site/v1")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        keys(&b),
        [
            "site/v1/.well-known/security.txt",
            "site/v1/README",
            "site/v1/css/site.css",
            "site/v1/index.html",
            "site/v1/js/app.js"
        ]
    );
    assert_eq!(get(&b, "site/v1/css/site.css"), b"body{}");
    assert!(
        run.stdout.contains("5 files (39 B) match"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Uploaded 5 file(s)"));
    // Progress and the summary reach the agent.
    assert!(run.commands().iter().any(|c| c.is("task.setprogress")));
    let summary = run
        .commands()
        .into_iter()
        .find(|c| c.is("task.uploadsummary"))
        .expect("a summary");
    assert!(
        std::fs::read_to_string(test_support::platform::host_path(&summary.message))
            .unwrap()
            .contains("| files uploaded | 5 |")
    );
}

#[test]
fn flatten_folders_and_its_clashes() {
    let b = bucket();
    let src = tree(&[("a/one.txt", b"1"), ("b/two.txt", b"2")]);
    upload(&b, &src)
        .input("flattenFolders", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(keys(&b), ["one.txt", "two.txt"]);

    let clash = tree(&[("a/same.txt", b"1"), ("b/same.txt", b"2")]);
    upload(&b, &clash)
        .input("flattenFolders", "true")
        .run(bin())
        .assert_failed_with("Several files would be uploaded to the same key");
}

#[test]
fn symlinked_files_are_followed() {
    let b = bucket();
    let src = tree(&[("real/data.txt", b"linked content")]);
    std::os::unix::fs::symlink(src.join("real/data.txt"), src.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(src.join("real"), src.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(src.join("missing"), src.join("broken.txt")).unwrap();
    let run = upload(&b, &src).run(bin());
    assert_eq!(keys(&b), ["link.txt", "linkdir/data.txt", "real/data.txt"]);
    assert_eq!(get(&b, "link.txt"), b"linked content");
    // A broken link is reported, not silently dropped.
    run.assert_warned("broken.txt");
}

#[test]
fn no_matching_files_is_a_warning() {
    let b = bucket();
    let src = tree(&[("a.txt", b"1")]);
    let run = upload(&b, &src)
        .input("globExpressions", "*.zip")
        .run(bin());
    run.assert_warned("match the patterns of 'globExpressions'");
    assert!(keys(&b).is_empty());
}

#[test]
fn a_missing_bucket_is_an_error_unless_created() {
    let name = unique("nobkt").to_lowercase();
    let src = tree(&[("a.txt", b"1")]);
    upload(&name, &src).run(bin()).assert_failed_with(&format!(
        "Bucket '{name}' does not exist in region us-east-1. Create it, or set createBucket"
    ));
    upload(&name, &src)
        .input("createBucket", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(keys(&name), ["a.txt"]);
}

#[test]
fn multipart_for_large_files_round_trips() {
    let b = bucket();
    let big = data(20 * 1024 * 1024 + 123, 7);
    let src = tree(&[("big.bin", &big), ("small.bin", b"s")]);
    let run = upload(&b, &src).input("maxConcurrency", "4").run(bin());
    run.assert_succeeded();
    let h = head(&b, "big.bin");
    assert!(
        h.e_tag().unwrap().trim_matches('"').ends_with("-3"),
        "three parts: {:?}",
        h.e_tag()
    );
    assert_eq!(h.content_length(), Some(big.len() as i64));
    assert!(get(&b, "big.bin") == big, "content differs");
    let pending = block_on(s3().list_multipart_uploads().bucket(&b).send()).unwrap();
    assert!(pending.uploads().is_empty());
}

#[test]
fn dry_run_changes_nothing() {
    let b = bucket();
    let src = tree(&[("a.txt", b"1"), ("b/c.txt", b"2")]);
    let run = upload(&b, &src).input("dryRun", "true").run(bin());
    run.assert_succeeded();
    assert!(keys(&b).is_empty());
    assert!(
        run.stdout
            .contains(&format!("would upload b/c.txt -> s3://{b}/b/c.txt")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Dry run: 2 to upload, 0 identical, 0 to delete.")
    );
}

#[test]
fn bad_inputs_name_the_input() {
    let b = bucket();
    let src = tree(&[("a.txt", b"1")]);
    let cases: Vec<(TaskEnv, &str)> = vec![
        (
            upload(&b, &src).input("cacheControl", "*.html"),
            "Input 'cacheControl', line 1: expected <pattern>=<Cache-Control value>, got '*.html'",
        ),
        (
            upload(&b, &src).input("cacheControl", "=max-age=1"),
            "Input 'cacheControl', line 1",
        ),
        (
            upload(&b, &src)
                .input("keyManagement", "customerManaged")
                .input("customerKey", "abc123"),
            "Input 'customerKey' must be a 256-bit key written as 64 hexadecimal digits",
        ),
        (
            upload(&b, &src).input("keyManagement", "customerManaged"),
            "Input required: customerKey",
        ),
        (
            upload(&b, &src).input("deleteRemoved", "true"),
            "Input 'deleteRemoved' needs 'syncMode'",
        ),
        (
            upload(&b, &src).input("maxConcurrency", "0"),
            "Input 'maxConcurrency' must be a whole number from 1 to 512 (got '0')",
        ),
        (
            upload(&b, &src).input("storageClass", "COLD"),
            "Input 'storageClass' must be one of: STANDARD, STANDARD_IA",
        ),
        (
            upload(&b, &src).input("filesAcl", "everyone"),
            "Input 'filesAcl' must be one of: private, public-read",
        ),
        (
            upload(&b, &src).input("sourceFolder", "/no/such/folder"),
            "Input 'sourceFolder': folder '/no/such/folder' cannot be read",
        ),
        (
            upload(&b, &src).input("globExpressions", ""),
            "Input required: globExpressions",
        ),
        (
            upload(&b, &src).input("endpointUrl", "minio:9000"),
            "Input 'endpointUrl' is 'minio:9000': the scheme must be http or https",
        ),
        (
            upload(&b, &src).input("endpointUrl", "http://127.0.0.1:99999"),
            "Input 'endpointUrl' is 'http://127.0.0.1:99999', which is not a valid URL (invalid port number)",
        ),
        (upload("", &src), "Input required: bucketName"),
        (
            upload(&b, &src).input("targetFolder", "../site"),
            "Input 'targetFolder': '../site' climbs above the root of the bucket",
        ),
        (
            upload(&b, &src).input("targetFolder", "a/./../../site"),
            "Input 'targetFolder': 'a/./../../site' climbs above the root",
        ),
    ];
    for (env, want) in cases {
        env.run(bin()).assert_failed_with(want);
    }
    assert!(keys(&b).is_empty(), "nothing was uploaded by a bad step");
}

#[test]
fn the_customer_key_never_appears_in_the_log() {
    let b = bucket();
    let src = tree(&[("a.txt", b"secret data")]);
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let run = upload(&b, &src)
        .input("keyManagement", "customerManaged")
        .input("customerKey", key)
        .input("logRequest", "true")
        .run(bin());
    run.assert_succeeded();
    // The base64 form that travels in the header is registered too.
    assert!(
        run.registered_secrets()
            .iter()
            .any(|s| s == "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=")
    );
    assert_no_leaks(
        &run,
        &[
            key,
            "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=",
            "testing",
        ],
    );
}

/// Each part carries the CRC32 of its own bytes as a header (S3 checks it),
/// and the body goes out plain, not aws-chunked.
#[test]
fn every_part_carries_its_crc32() {
    use base64::Engine;
    let b = bucket();
    let big = data(17 * 1024 * 1024, 21);
    let src = tree(&[("big.bin", &big)]);
    let p = test_support::recording_proxy(&test_support::moto());
    upload(&b, &src)
        .input("endpointUrl", &p.url)
        .run(bin())
        .assert_succeeded();
    let parts: Vec<_> = p
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.target.contains("partNumber="))
        .collect();
    assert_eq!(parts.len(), 3);
    for part in parts {
        let n: usize = part
            .target
            .split("partNumber=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let start = (n - 1) * 8 * 1024 * 1024;
        let end = (start + 8 * 1024 * 1024).min(big.len());
        let want = base64::engine::general_purpose::STANDARD
            .encode(crc32fast::hash(&big[start..end]).to_be_bytes());
        assert_eq!(
            part.header("x-amz-checksum-crc32"),
            Some(want.as_str()),
            "part {n}"
        );
        assert_ne!(part.header("content-encoding"), Some("aws-chunked"));
        assert!(part.body == big[start..end], "part {n} body");
    }
    assert!(get(&b, "big.bin") == big);
}

/// Inner `.` and `..` in the target folder resolve as the original's
/// `path.join` resolves them.
#[test]
fn inner_dot_segments_of_the_target_folder_are_resolved() {
    let b = bucket();
    let src = tree(&[("a.txt", b"a"), ("sub/b.txt", b"b")]);
    upload(&b, &src)
        .input("targetFolder", "site/./old/../v2/")
        .run(bin())
        .assert_succeeded();
    assert_eq!(keys(&b), ["site/v2/a.txt", "site/v2/sub/b.txt"]);
}

/// A custom endpoint (here moto's, by a host name, from AWS_ENDPOINT_URL)
/// is addressed path-style even when forcePathStyleAddressing is left off:
/// an emulator or S3-compatible store rarely resolves `bucket.host`.
#[test]
fn a_custom_endpoint_is_addressed_path_style() {
    let b = bucket();
    let src = tree(&[("a.txt", b"alpha")]);
    let by_name = test_support::moto().replace("127.0.0.1", "localhost");
    upload(&b, &src)
        .set("AWS_ENDPOINT_URL", &by_name)
        .input("forcePathStyleAddressing", "false")
        .run(bin())
        .assert_succeeded();
    assert_eq!(get(&b, "a.txt"), b"alpha");
}
