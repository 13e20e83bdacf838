//! S3Download: objects under a key prefix to a folder on the agent.
//!
//! Lists past 1,000 keys, matches the part of each key after `sourceFolder`
//! with the same patterns as S3Upload, and writes each object where the
//! original task does: `targetFolder/<the object's full key>` (or
//! `targetFolder/<its file name>` with `flattenFolders`). Keys that would
//! land outside the target folder (`..`) are refused, `overwrite` is checked
//! for every file before downloading any, then downloads run
//! concurrently (`fetch`): objects from 16 MiB in 8 MiB ranged GETs in
//! parallel, a body cut short resumed where it stopped, each object into a
//! temporary file renamed into place, so a failed download never leaves a
//! half-written file.

mod fetch;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_s3::{CustomerKey, Patterns, Progress, human_bytes};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};

#[derive(Debug)]
pub struct Params {
    pub bucket: String,
    pub prefix: String,
    pub patterns: Patterns,
    pub target: PathBuf,
    pub customer_key: Option<CustomerKey>,
    pub overwrite: bool,
    pub path_style: bool,
    pub flatten: bool,
    pub endpoint: Option<String>,
    pub concurrency: usize,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let bucket = inputs.required("bucketName")?;
        let globs = inputs.lines("globExpressions");
        if globs.is_empty() {
            bail!("Input required: globExpressions");
        }
        let patterns = Patterns::parse("globExpressions", &globs, None, cfg!(windows))?;
        let target = PathBuf::from(inputs.required("targetFolder")?);
        let customer_key = match inputs
            .pick("keyManagement", &["noneOrAWSManaged", "customerManaged"])?
            .unwrap_or("noneOrAWSManaged")
        {
            "customerManaged" => Some(CustomerKey::from_input(task, "customerKey")?),
            _ => None,
        };
        Ok(Params {
            bucket,
            prefix: inputs.get("sourceFolder").unwrap_or_default(),
            patterns,
            target,
            customer_key,
            overwrite: inputs.bool_or("overwrite", true),
            path_style: inputs.bool("forcePathStyleAddressing"),
            flatten: inputs.bool("flattenFolders"),
            endpoint: vsts_s3::endpoint_input(task)?,
            concurrency: inputs.int("maxConcurrency", 1..=512)?.unwrap_or(128) as usize,
        })
    }
}

/// One object to fetch.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub key: String,
    pub size: u64,
    /// From the listing: every GET of the object must match it.
    pub etag: Option<String>,
    pub dest: PathBuf,
}

/// Where a key lands: the full key under `target` (path separators and
/// `.`/`..` resolved the way the original's `path.join` resolves them), or
/// only its file name with `flatten`. An error when it would leave the
/// target folder or has no file name.
pub fn destination(target: &Path, key: &str, flatten: bool) -> Result<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in Path::new(key).components() {
        match part {
            Component::Normal(p) => parts.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    bail!("the key would be written outside the target folder");
                }
            }
            Component::Prefix(_) => bail!("the key names a drive"),
        }
    }
    if flatten {
        parts = parts.last().copied().into_iter().collect();
    }
    if parts.is_empty() {
        bail!("the key has no file name");
    }
    let mut out = target.to_path_buf();
    out.extend(parts);
    Ok(out)
}

/// Zero-byte "folder" objects some tools create: `name/` (S3 console) and
/// `name_$folder$` (older tools). The original skips the second kind and
/// creates a folder for the first.
fn folder_marker(key: &str) -> Option<bool> {
    if key.ends_with("_$folder$") {
        Some(false)
    } else if key.ends_with('/') {
        Some(true)
    } else {
        None
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line(
        "bucketName",
        255,
        "a bucket name: 63 on S3, 255 on S3-compatible stores",
    ),
    line("sourceFolder", 1024, "an S3 key prefix"),
    lines("globExpressions", ceiling::TEXT, "a list of patterns"),
    line("targetFolder", ceiling::PATH, "a folder path"),
    line("customerKey", 128, "a 256-bit key in hexadecimal"),
    line("endpointUrl", ceiling::URL, "an endpoint URL"),
    line("maxConcurrency", ceiling::NUMBER, "a number"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    tokio::select! {
        result = execute(&task, &setup, &params) => result,
        // Dropping the work aborts every download; each one's temporary
        // file is removed as its future is dropped (at the latest when the
        // runtime shuts down, before the process exits).
        signal = vsts_task::cancelled() => Err(anyhow!(
            "Cancelled ({signal}); the unfinished downloads were discarded and no partial file is left."
        )),
    }
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let client = vsts_s3::client(task, setup, p.path_style, p.endpoint.as_deref());
    let prefix = p.prefix.trim_start_matches('/').to_string();
    console.info(&format!("Listing s3://{}/{prefix}", p.bucket));
    let mut objects = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&p.bucket)
        .set_prefix((!prefix.is_empty()).then(|| prefix.clone()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            if vsts_aws_common::is_not_found(&e) {
                anyhow!(
                    "Bucket '{}' does not exist in region {}.",
                    p.bucket,
                    setup.region
                )
            } else {
                anyhow!(
                    "Listing s3://{}/{prefix} failed: {}",
                    p.bucket,
                    sdk_error_text(&e)
                )
            }
        })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                objects.push((
                    k.to_string(),
                    o.size().unwrap_or(0).max(0) as u64,
                    o.e_tag().map(str::to_string),
                ));
            }
        }
    }
    let mut fetches = Vec::new();
    let mut folders = Vec::new();
    let mut refused = Vec::new();
    for (key, size, etag) in objects {
        let marker = folder_marker(&key);
        if marker == Some(false) || (marker == Some(true) && p.flatten) {
            continue;
        }
        // The patterns see the key below sourceFolder, as in the original;
        // the file lands under the full key.
        let rel = key
            .strip_prefix(&prefix)
            .unwrap_or(&key)
            .trim_start_matches('/');
        if rel.is_empty() || !p.patterns.matches(rel.trim_end_matches('/')) {
            continue;
        }
        match destination(&p.target, &key, p.flatten) {
            Ok(dest) if marker == Some(true) => folders.push(dest),
            Ok(dest) => fetches.push(Fetch {
                key,
                size,
                etag,
                dest,
            }),
            Err(e) => refused.push(format!("{key} ({e})")),
        }
    }
    if !refused.is_empty() {
        bail!(
            "Refused {} key(s) that would escape {}: {}",
            refused.len(),
            p.target.display(),
            refused.join(", ")
        );
    }
    for dir in &folders {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if fetches.is_empty() {
        if !folders.is_empty() {
            console.info(&format!(
                "Created {} folder(s); no files matched.",
                folders.len()
            ));
            return Ok(());
        }
        console.warning(&format!(
            "No objects under s3://{}/{prefix} match the patterns of 'globExpressions'.",
            p.bucket
        ));
        return Ok(());
    }
    let mut seen = std::collections::HashMap::new();
    for f in &fetches {
        if let Some(other) = seen.insert(f.dest.clone(), f.key.clone()) {
            bail!(
                "Keys '{other}' and '{}' would both be written to {} (flattenFolders)",
                f.key,
                f.dest.display()
            );
        }
    }
    let existing: Vec<String> = fetches
        .iter()
        .filter(|f| f.dest.exists())
        .map(|f| f.dest.display().to_string())
        .collect();
    if !existing.is_empty() && !p.overwrite {
        bail!(
            "{} file(s) already exist and overwrite is false: {}",
            existing.len(),
            existing
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !existing.is_empty() {
        console.info(&format!(
            "{} existing file(s) will be overwritten",
            existing.len()
        ));
    }
    let total: u64 = fetches.iter().map(|f| f.size).sum();
    console.info(&format!(
        "Downloading {} object(s) ({}) to {}",
        fetches.len(),
        human_bytes(total),
        p.target.display()
    ));
    let progress = Arc::new(Progress::new(
        console,
        "Downloaded",
        fetches.len() as u64,
        total,
    ));
    let source = Arc::new(fetch::Source {
        client: client.clone(),
        console: console.clone(),
        bucket: p.bucket.clone(),
        customer_key: p.customer_key.clone(),
        progress: progress.clone(),
        parts: Arc::new(Semaphore::new(fetch::PARTS_IN_FLIGHT_TOTAL)),
    });
    // At most `maxConcurrency` downloads exist at a time: started as others
    // end, so memory does not grow with the number of objects.
    let mut set = JoinSet::new();
    let mut failures = Vec::new();
    let mut record = |joined: Result<Result<()>, tokio::task::JoinError>| match joined {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push(format!("{e:#}")),
        Err(e) => failures.push(format!("internal error: {e}")),
    };
    for f in fetches.iter().cloned() {
        while set.len() >= p.concurrency {
            if let Some(joined) = set.join_next().await {
                record(joined);
            }
        }
        let source = source.clone();
        set.spawn(async move {
            let r = fetch::fetch(&source, &f).await;
            source.progress.file_done();
            r.with_context(|| format!("s3://{}/{}", source.bucket, f.key))
        });
    }
    while let Some(joined) = set.join_next().await {
        record(joined);
    }
    if !failures.is_empty() {
        failures.sort();
        bail!(
            "{} of {} downloads failed: {}",
            failures.len(),
            fetches.len(),
            failures.join("; ")
        );
    }
    let secs = progress.elapsed().as_secs_f64().max(0.001);
    console.info(&format!(
        "Downloaded {} object(s), {} in {secs:.1} s ({}/s)",
        fetches.len(),
        human_bytes(total),
        human_bytes((total as f64 / secs) as u64)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_under_their_full_name_and_cannot_escape() {
        let t = Path::new("/work/out");
        let at = |key: &str, flat: bool| destination(t, key, flat).unwrap();
        assert_eq!(at("a/b.txt", false), Path::new("/work/out/a/b.txt"));
        assert_eq!(at("a/b.txt", true), Path::new("/work/out/b.txt"));
        assert_eq!(at("./a.txt", false), Path::new("/work/out/a.txt"));
        assert_eq!(at("/a.txt", false), Path::new("/work/out/a.txt"));
        assert_eq!(at("a/../b.txt", false), Path::new("/work/out/b.txt"));
        assert_eq!(at("a/b/", false), Path::new("/work/out/a/b"));
        for bad in ["../x", "a/../../x", "a/..", ""] {
            assert!(destination(t, bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn folder_markers_of_both_kinds() {
        assert_eq!(folder_marker("a/b/"), Some(true));
        assert_eq!(folder_marker("a/b_$folder$"), Some(false));
        assert_eq!(folder_marker("a/b"), None);
    }
}
