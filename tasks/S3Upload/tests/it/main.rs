//! S3Upload against moto: objects read back (HeadObject, GetObjectAcl,
//! GetObject), faults injected by a proxy in front of moto.

mod faults;
mod headers;
mod sync;
mod upload;

use std::path::{Path, PathBuf};

pub use test_support::s3::{keys, object as get, s3};
use test_support::{TaskEnv, block_on, unique};

/// A new empty bucket.
pub fn bucket() -> String {
    test_support::s3::bucket("bkt")
}

/// A folder with files: `(relative path, content)`.
pub fn tree(files: &[(&str, &[u8])]) -> PathBuf {
    test_support::s3::folder("src", files)
}

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_s3upload"))
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
