//! What each object carries, read back with HeadObject and GetObjectAcl.

use aws_sdk_s3::types::{Permission, ServerSideEncryption, StorageClass, Type};

use crate::*;

#[test]
fn content_type_by_extension_or_input() {
    let b = bucket();
    let src = tree(&[
        ("a.txt", b"t"),
        ("b.html", b"h"),
        ("c.json", b"{}"),
        ("d", b"none"),
        ("e.bat", b"@echo"),
    ]);
    upload(&b, &src).run(bin()).assert_succeeded();
    let ct = |k: &str| head(&b, k).content_type().unwrap().to_string();
    assert_eq!(ct("a.txt"), "text/plain");
    assert_eq!(ct("b.html"), "text/html");
    assert_eq!(ct("c.json"), "application/json");
    assert_eq!(ct("d"), "application/octet-stream");
    assert_eq!(ct("e.bat"), "application/x-msdownload");

    let b2 = bucket();
    upload(&b2, &src)
        .input("contentType", "application/x-custom")
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        head(&b2, "b.html").content_type(),
        Some("application/x-custom")
    );
}

#[test]
fn cache_control_first_matching_line_wins_and_encoding_applies() {
    let b = bucket();
    let src = tree(&[
        ("index.html", b"h"),
        ("assets/app.js", b"j"),
        ("assets/logo.png", b"p"),
    ]);
    upload(&b, &src)
        .input(
            "cacheControl",
            "*.html=no-cache\nassets/*.js=public, max-age=31536000, immutable\n**=max-age=3600",
        )
        .input("contentEncoding", "identity")
        .run(bin())
        .assert_succeeded();
    assert_eq!(head(&b, "index.html").cache_control(), Some("no-cache"));
    assert_eq!(
        head(&b, "assets/app.js").cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        head(&b, "assets/logo.png").cache_control(),
        Some("max-age=3600")
    );
    assert_eq!(head(&b, "index.html").content_encoding(), Some("identity"));
}

#[test]
fn storage_classes_old_and_new() {
    for class in [
        "STANDARD_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "ONEZONE_IA",
    ] {
        let b = bucket();
        let src = tree(&[("a.txt", b"1")]);
        upload(&b, &src)
            .input("storageClass", class)
            .run(bin())
            .assert_succeeded();
        assert_eq!(
            head(&b, "a.txt").storage_class(),
            Some(&StorageClass::from(class)),
            "{class}"
        );
    }
}

#[test]
fn server_side_encryption_modes() {
    let src = tree(&[("a.txt", b"1")]);
    let b = bucket();
    upload(&b, &src)
        .input("keyManagement", "awsManaged")
        .input("encryptionAlgorithm", "AES256")
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        head(&b, "a.txt").server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );

    let b = bucket();
    upload(&b, &src)
        .input("keyManagement", "awsManaged")
        .input("encryptionAlgorithm", "KMS")
        .input("kmsMasterKeyId", "alias/pipeline-key")
        .run(bin())
        .assert_succeeded();
    let h = head(&b, "a.txt");
    assert_eq!(
        h.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(h.ssekms_key_id(), Some("alias/pipeline-key"));

    // moto does not keep SSE-C metadata: check what the task sent.
    let b = bucket();
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let p = test_support::recording_proxy(&test_support::moto());
    upload(&b, &src)
        .input("endpointUrl", &p.url)
        .input("keyManagement", "customerManaged")
        .input("customerKey", key)
        .run(bin())
        .assert_succeeded();
    let put = p
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.header("x-amz-server-side-encryption-customer-algorithm"),
        Some("AES256")
    );
    assert_eq!(
        put.header("x-amz-server-side-encryption-customer-key"),
        Some("ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=")
    );
    assert_eq!(
        put.header("x-amz-server-side-encryption-customer-key-md5"),
        Some(sse_c_md5(key).as_str())
    );
}

fn sse_c_md5(hex: &str) -> String {
    use base64::Engine;
    use md5::Digest;
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&bytes))
}

#[test]
fn acl_private_by_default_public_read_when_asked() {
    let src = tree(&[("a.txt", b"1")]);
    let b = bucket();
    upload(&b, &src).run(bin()).assert_succeeded();
    let acl = block_on(s3().get_object_acl().bucket(&b).key("a.txt").send()).unwrap();
    let all_users = |acl: &aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput| {
        acl.grants().iter().any(|g| {
            g.grantee().is_some_and(|ge| {
                ge.r#type() == &Type::Group
                    && ge.uri().is_some_and(|u| u.ends_with("/global/AllUsers"))
            }) && g.permission() == Some(&Permission::Read)
        })
    };
    assert!(!all_users(&acl), "private: no public grant");
    assert!(
        acl.grants()
            .iter()
            .any(|g| g.permission() == Some(&Permission::FullControl))
    );

    let b = bucket();
    upload(&b, &src)
        .input("filesAcl", "public-read")
        .run(bin())
        .assert_succeeded();
    let acl = block_on(s3().get_object_acl().bucket(&b).key("a.txt").send()).unwrap();
    assert!(all_users(&acl), "public-read grants AllUsers READ");
}
