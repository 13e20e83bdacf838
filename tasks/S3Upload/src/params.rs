//! S3Upload's inputs, all checked before the first AWS call.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use aws_sdk_s3::types::{ObjectCannedAcl, StorageClass};
use vsts_s3::{CustomerKey, Patterns};
use vsts_task::Task;

#[derive(Debug, Clone)]
pub enum Sse {
    None,
    Kms { key_id: Option<String> },
    Aes256,
    Customer(CustomerKey),
}

#[derive(Debug)]
pub struct Params {
    pub bucket: String,
    pub source: PathBuf,
    pub patterns: Patterns,
    pub target: String,
    /// `None` for `private`: the default for new objects, and the only way
    /// to upload to buckets with ACLs disabled (Object Ownership enforced).
    pub acl: Option<ObjectCannedAcl>,
    pub create_bucket: bool,
    pub sse: Sse,
    pub flatten: bool,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub storage_class: StorageClass,
    pub path_style: bool,
    pub cache_control: Vec<(Patterns, String)>,
    pub endpoint: Option<String>,
    pub concurrency: usize,
    pub sync: bool,
    pub delete_removed: bool,
    pub dry_run: bool,
    pub follow_symlinks: bool,
}

pub const ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "REDUCED_REDUNDANCY",
    "INTELLIGENT_TIERING",
    "ONEZONE_IA",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
];

pub const DEFAULT_CONCURRENCY: i64 = 32;

/// The key prefix, as the original's `path.join` gives it: `\\` is a
/// separator on Windows, `.` and inner `..` segments are resolved when the
/// keys are made; a `..` that would climb above the bucket root is refused.
pub fn target_folder(raw: String) -> Result<String> {
    let target = if cfg!(windows) {
        raw.replace('\\', "/")
    } else {
        raw
    };
    let mut depth = 0usize;
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." if depth == 0 => bail!(
                "Input 'targetFolder': '{target}' climbs above the root of the bucket ('..'). \
                 Give a key prefix inside the bucket, such as 'site/v1'."
            ),
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(target)
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let bucket = inputs.required("bucketName")?;
        let source = match inputs.get("sourceFolder") {
            Some(_) => inputs.existing_dir("sourceFolder")?.expect("given"),
            None => task
                .variables()
                .value("System.DefaultWorkingDirectory")
                .map(PathBuf::from)
                .or_else(|| std::env::current_dir().ok())
                .ok_or_else(|| anyhow!("Input required: sourceFolder"))?,
        };
        let globs = inputs.lines("globExpressions");
        if globs.is_empty() {
            bail!("Input required: globExpressions");
        }
        let root = source.to_string_lossy().into_owned();
        let patterns = Patterns::parse("globExpressions", &globs, Some(&root), cfg!(windows))?;
        let acl = match inputs.pick("filesAcl", ACLS)?.unwrap_or("private") {
            "private" => None,
            other => Some(ObjectCannedAcl::from(other)),
        };
        let sse = match inputs
            .pick("keyManagement", &["none", "awsManaged", "customerManaged"])?
            .unwrap_or("none")
        {
            "awsManaged" => match inputs
                .pick("encryptionAlgorithm", &["KMS", "AES256"])?
                .unwrap_or("KMS")
            {
                "AES256" => Sse::Aes256,
                _ => Sse::Kms {
                    key_id: inputs.get("kmsMasterKeyId"),
                },
            },
            "customerManaged" => Sse::Customer(CustomerKey::from_input(task, "customerKey")?),
            _ => Sse::None,
        };
        let storage_class = StorageClass::from(
            inputs
                .pick("storageClass", STORAGE_CLASSES)?
                .unwrap_or("STANDARD"),
        );
        let mut cache_control = Vec::new();
        for (n, line) in inputs.lines("cacheControl").iter().enumerate() {
            let Some((glob, value)) = line
                .split_once('=')
                .filter(|(g, v)| !g.trim().is_empty() && !v.trim().is_empty())
            else {
                bail!(
                    "Input 'cacheControl', line {}: expected <pattern>=<Cache-Control value>, got '{line}'",
                    n + 1
                );
            };
            let p = Patterns::parse(
                "cacheControl",
                &[glob.trim().to_string()],
                Some(&root),
                cfg!(windows),
            )?;
            cache_control.push((p, value.trim().to_string()));
        }
        let flatten = inputs.bool("flattenFolders");
        let sync = inputs.bool("syncMode");
        let delete_removed = inputs.bool("deleteRemoved");
        if delete_removed && !sync {
            bail!("Input 'deleteRemoved' needs 'syncMode': deleting objects is part of a sync.");
        }
        if delete_removed && flatten {
            bail!(
                "Inputs 'deleteRemoved' and 'flattenFolders' cannot be combined: flattened keys do not mirror the source folder."
            );
        }
        let concurrency = inputs
            .int("maxConcurrency", 1..=512)?
            .unwrap_or(DEFAULT_CONCURRENCY) as usize;
        Ok(Params {
            bucket,
            source,
            patterns,
            target: target_folder(inputs.get("targetFolder").unwrap_or_default())?,
            acl,
            create_bucket: inputs.bool("createBucket"),
            sse,
            flatten,
            content_type: inputs.get("contentType"),
            content_encoding: inputs.get("contentEncoding"),
            storage_class,
            path_style: inputs.bool("forcePathStyleAddressing"),
            cache_control,
            endpoint: vsts_s3::endpoint_input(task)?,
            concurrency,
            sync,
            delete_removed,
            dry_run: inputs.bool("dryRun"),
            follow_symlinks: inputs.bool_or("followSymlinks", true),
        })
    }
}
