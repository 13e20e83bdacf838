//! S3Upload against moto: objects read back (HeadObject, GetObjectAcl,
//! GetObject), faults injected by a proxy in front of moto.

mod faults;
mod headers;
mod sync;
mod upload;

use std::path::{Path, PathBuf};

use test_support::{TaskEnv, block_on, sdk_config, unique};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_s3upload"))
}

pub fn s3() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A new empty bucket.
pub fn bucket() -> String {
    let name = unique("bkt").to_lowercase().replace('_', "-");
    let name: String = name.chars().take(63).collect();
    block_on(s3().create_bucket().bucket(&name).send()).unwrap();
    name
}

/// A folder with files: `(relative path, content)`.
pub fn tree(files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("src"));
    for (rel, content) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// An S3Upload step against moto with path-style addressing.
pub fn upload(bucket: &str, source: &Path) -> TaskEnv {
    TaskEnv::moto()
        .input("bucketName", bucket)
        .input("sourceFolder", source.to_str().unwrap())
        .input("globExpressions", "**")
        .input("forcePathStyleAddressing", "true")
}

pub fn head(bucket: &str, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    block_on(s3().head_object().bucket(bucket).key(key).send())
        .unwrap_or_else(|e| panic!("HeadObject {key}: {}", vsts_aws_common::sdk_error_text(&e)))
}

pub fn get(bucket: &str, key: &str) -> Vec<u8> {
    block_on(async {
        let out = s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

pub fn keys(bucket: &str) -> Vec<String> {
    let out = block_on(s3().list_objects_v2().bucket(bucket).send()).unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
