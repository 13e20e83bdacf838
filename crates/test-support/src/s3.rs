//! S3 in moto for the tests that read back what a task uploaded.

use std::path::PathBuf;

use crate::{block_on, sdk_config, unique};

/// An S3 client for moto, path style.
pub fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config())
            .force_path_style(true)
            .build(),
    )
}

/// A new bucket, named from `prefix`.
pub fn bucket(prefix: &str) -> String {
    let name: String = unique(prefix)
        .to_lowercase()
        .replace('_', "-")
        .chars()
        .take(63)
        .collect();
    block_on(s3().create_bucket().bucket(&name).send()).unwrap();
    name
}

/// The keys in `bucket` (first page), sorted.
pub fn keys(bucket: &str) -> Vec<String> {
    let mut keys: Vec<String> = block_on(s3().list_objects_v2().bucket(bucket).send())
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// An object's bytes, read on the runtime that fetched it.
pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    block_on(async {
        let o = s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        o.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

/// A new folder under the temporary folder holding `files` (path relative
/// to it, content).
pub fn folder(prefix: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    for (rel, bytes) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dir
}
