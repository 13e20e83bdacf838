//! S3Download: objects under a key prefix to a folder on the agent.
//!
//! Lists past 1,000 keys, matches them with the same patterns as S3Upload,
//! refuses keys that would land outside the target folder (`..`), checks
//! `overwrite` for every file before downloading any, then downloads
//! concurrently. Each object streams into a temporary file renamed into
//! place, so a failed download never leaves a half-written file.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_s3::{CustomerKey, Patterns, Progress, human_bytes};
use vsts_task::Task;

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
            concurrency: inputs.int("maxConcurrency", 1..=512)?.unwrap_or(16) as usize,
        })
    }
}

/// One object to fetch.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub key: String,
    pub size: u64,
    pub dest: PathBuf,
}

/// Where a key lands, or an error when it would leave the target folder.
pub fn destination(target: &Path, rel: &str, flatten: bool) -> Result<PathBuf> {
    let rel = if flatten {
        rel.rsplit('/').next().unwrap_or(rel)
    } else {
        rel
    };
    let mut out = target.to_path_buf();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => bail!("the key would be written outside the target folder"),
        }
    }
    if out == target {
        bail!("the key has no file name");
    }
    Ok(out)
}

pub async fn run(task: Task) -> Result<()> {
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
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
            use aws_sdk_s3::error::ProvideErrorMetadata;
            if e.code() == Some("NoSuchBucket") {
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
                objects.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
    }
    let mut fetches = Vec::new();
    let mut refused = Vec::new();
    for (key, size) in objects {
        if key.ends_with('/') {
            continue; // a folder marker
        }
        let rel = key
            .strip_prefix(&prefix)
            .unwrap_or(&key)
            .trim_start_matches('/');
        if !p.patterns.matches(rel) {
            continue;
        }
        match destination(&p.target, rel, p.flatten) {
            Ok(dest) => fetches.push(Fetch { key, size, dest }),
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
    if fetches.is_empty() {
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
    let limit = Arc::new(Semaphore::new(p.concurrency));
    let key = p.customer_key.clone();
    let mut set = JoinSet::new();
    for f in fetches.clone() {
        let client = client.clone();
        let bucket = p.bucket.clone();
        let limit = limit.clone();
        let progress = progress.clone();
        let key = key.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let r = fetch(&client, &bucket, &f, key.as_ref(), &progress).await;
            progress.file_done();
            r.with_context(|| format!("s3://{bucket}/{}", f.key))
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(format!("internal error: {e}")),
        }
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

async fn fetch(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    f: &Fetch,
    key: Option<&CustomerKey>,
    progress: &Progress,
) -> Result<()> {
    let mut req = client.get_object().bucket(bucket).key(&f.key);
    if let Some(k) = key {
        req = req
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k.key_b64)
            .sse_customer_key_md5(&k.md5_b64);
    }
    let out = req
        .send()
        .await
        .map_err(|e| anyhow!("{}", sdk_error_text(&e)))?;
    if let Some(dir) = f.dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = f.dest.with_file_name(format!(
        ".{}.part-{}",
        f.dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut body = out.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| anyhow!("reading the object: {e}"))?
        {
            file.write_all(&chunk).await?;
            progress.bytes(chunk.len() as u64);
        }
        file.flush().await?;
        drop(file);
        tokio::fs::rename(&tmp, &f.dest)
            .await
            .with_context(|| format!("writing {}", f.dest.display()))?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_target() {
        let t = Path::new("/work/out");
        assert_eq!(
            destination(t, "a/b.txt", false).unwrap(),
            Path::new("/work/out/a/b.txt")
        );
        assert_eq!(
            destination(t, "a/b.txt", true).unwrap(),
            Path::new("/work/out/b.txt")
        );
        assert_eq!(
            destination(t, "./a.txt", false).unwrap(),
            Path::new("/work/out/a.txt")
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "a/.."] {
            assert!(destination(t, bad, false).is_err(), "{bad}");
        }
        assert!(destination(t, "", false).is_err());
    }
}
