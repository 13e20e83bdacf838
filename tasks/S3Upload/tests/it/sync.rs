//! Sync: identical files are skipped (size and MD5, not timestamps), stale
//! objects deleted when asked. The proxy shows which requests were made.

use test_support::recording_proxy;

use crate::*;

fn puts(p: &test_support::HttpServer) -> Vec<String> {
    let mut v: Vec<String> = p
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && !r.target.contains("uploadId"))
        .map(|r| r.path().splitn(3, '/').nth(2).unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn sync_uploads_only_what_changed_and_deletes_strays() {
    let b = bucket();
    let big = data(17 * 1024 * 1024, 3);
    let src = tree(&[
        ("same.txt", b"unchanged"),
        ("changed.txt", b"old"),
        ("keep/big.bin", &big),
        ("skip.log", b"l"),
    ]);
    upload(&b, &src)
        .input("targetFolder", "app")
        .run(bin())
        .assert_succeeded();
    // Remote extras: one stale under the prefix, one outside it, one excluded by the patterns.
    for k in ["app/stale.txt", "other/outside.txt", "app/ignored.log"] {
        block_on(
            s3().put_object()
                .bucket(&b)
                .key(k)
                .body(b"x".to_vec().into())
                .send(),
        )
        .unwrap();
    }
    // Same size, new content: must be detected by checksum, not size.
    std::fs::write(src.join("changed.txt"), b"new").unwrap();
    std::fs::write(src.join("added.txt"), b"added").unwrap();

    let p = recording_proxy(&test_support::moto());
    let run = upload(&b, &src)
        .input("endpointUrl", &p.url)
        .input("targetFolder", "app")
        .input("globExpressions", "**\n!*.log")
        .input("syncMode", "true")
        .input("deleteRemoved", "true")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        puts(&p),
        ["app/added.txt", "app/changed.txt"],
        "only new and changed files are sent"
    );
    assert_eq!(get(&b, "app/changed.txt"), b"new");
    assert_eq!(
        keys(&b),
        [
            "app/added.txt",
            "app/changed.txt",
            "app/ignored.log",
            "app/keep/big.bin",
            "app/same.txt",
            "app/skip.log",
            "other/outside.txt"
        ],
        "excluded files (*.log) are out of the sync's scope: neither sent nor deleted"
    );
    assert!(
        run.stdout.contains("2 identical skipped; 1 deleted"),
        "{}",
        run.stdout
    );
}

#[test]
fn sync_dry_run_lists_without_changing() {
    let b = bucket();
    let src = tree(&[("a.txt", b"a")]);
    upload(&b, &src).run(bin()).assert_succeeded();
    block_on(
        s3().put_object()
            .bucket(&b)
            .key("gone.txt")
            .body(b"x".to_vec().into())
            .send(),
    )
    .unwrap();
    let run = upload(&b, &src)
        .input("syncMode", "true")
        .input("deleteRemoved", "true")
        .input("dryRun", "true")
        .run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("would skip (identical) a.txt"));
    assert!(
        run.stdout
            .contains(&format!("would delete s3://{b}/gone.txt"))
    );
    assert_eq!(keys(&b), ["a.txt", "gone.txt"]);
}

/// A store whose listing omits ETags (some S3-compatible stores do): the
/// ETags of the same-size candidates are read with HeadObject, and nothing
/// identical is uploaded again.
#[test]
fn a_listing_without_etags_is_completed_by_head_requests() {
    let b = bucket();
    let src = tree(&[
        ("a.txt", b"alpha"),
        ("b/c.txt", b"gamma"),
        ("d.txt", b"delta"),
    ]);
    upload(&b, &src)
        .input("targetFolder", "app")
        .run(bin())
        .assert_succeeded();
    std::fs::write(src.join("d.txt"), b"DELTA").unwrap();
    let moto = test_support::moto();
    let upstream = moto.clone();
    let proxy = test_support::faulty_proxy(&moto, move |req| {
        if req.method != "GET" || !req.target.contains("list-type=2") {
            return None;
        }
        let mut listed = test_support::forward_to(&upstream, req);
        let text = String::from_utf8_lossy(&listed.body).into_owned();
        let mut stripped = text.clone();
        while let Some(start) = stripped.find("<ETag>") {
            let end = start + stripped[start..].find("</ETag>").unwrap() + "</ETag>".len();
            stripped.replace_range(start..end, "");
        }
        assert_ne!(stripped, text, "the listing had ETags to strip");
        listed.body = stripped.into_bytes();
        Some(listed)
    });
    let run = upload(&b, &src)
        .input("targetFolder", "app")
        .input("syncMode", "true")
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout
            .contains("Sync: the listing gives no ETags; reading 3 with HeadObject"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 identical skipped"), "{}", run.stdout);
    assert_eq!(puts(&proxy), ["app/d.txt"]);
    assert_eq!(get(&b, "app/d.txt"), b"DELTA");
}
