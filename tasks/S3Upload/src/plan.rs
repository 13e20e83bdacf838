//! What to upload: files found and matched, their keys, and (in sync mode)
//! which are already identical in S3 and which remote objects are stale.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use md5::{Digest, Md5};
use vsts_s3::join_key;
use vsts_task::Console;

use crate::multipart::{MULTIPART_THRESHOLD, part_size};
use crate::params::{Params, Sse};

#[derive(Debug, Clone)]
pub struct FileItem {
    pub path: PathBuf,
    /// Relative to the source folder, with `/`.
    pub rel: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Upload,
    Skip,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub rel: String,
    pub key: String,
    pub size: u64,
    pub action: Action,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub deletes: Vec<String>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

/// Files under the source folder that the patterns select, symlinks followed
/// (a broken or looping link is a warning, not a silent skip).
pub fn find_files(console: &Console, p: &Params) -> Result<Vec<FileItem>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(&p.source)
        .follow_links(p.follow_symlinks)
        .sort_by_file_name();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                console.warning(&format!("Skipping {path}: {e}"));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&p.source)
            .map_err(|_| anyhow!("{} is outside the source folder", entry.path().display()))?
            .to_string_lossy()
            .replace('\\', "/");
        if !p.patterns.matches(&rel) {
            continue;
        }
        let size = entry
            .metadata()
            .map_err(|e| anyhow!("{}: {e}", entry.path().display()))?
            .len();
        out.push(FileItem {
            path: entry.path().to_path_buf(),
            rel,
            size,
        });
    }
    Ok(out)
}

pub fn key_for(p: &Params, rel: &str) -> String {
    let name = if p.flatten {
        rel.rsplit('/').next().unwrap_or(rel)
    } else {
        rel
    };
    join_key(&p.target, name)
}

/// Keys, duplicate check, and sync decisions.
pub async fn decide(
    console: &Console,
    client: &aws_sdk_s3::Client,
    p: &Params,
    files: Vec<FileItem>,
) -> Result<Plan> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut items = Vec::with_capacity(files.len());
    for f in files {
        let key = key_for(p, &f.rel);
        if key.is_empty() {
            bail!("{} would have an empty S3 key", f.rel);
        }
        by_key.entry(key.clone()).or_default().push(f.rel.clone());
        items.push(Item {
            path: f.path,
            rel: f.rel,
            key,
            size: f.size,
            action: Action::Upload,
        });
    }
    let clashes: Vec<String> = by_key
        .iter()
        .filter(|(_, rels)| rels.len() > 1)
        .map(|(k, rels)| format!("{k} <- {}", rels.join(", ")))
        .collect();
    if !clashes.is_empty() {
        bail!(
            "Several files would be uploaded to the same key (flattenFolders drops their folders): {}",
            clashes.join("; ")
        );
    }
    let mut plan = Plan {
        items,
        deletes: Vec::new(),
    };
    if !p.sync {
        return Ok(plan);
    }
    let remote = list_remote(client, p).await?;
    console.info(&format!(
        "Sync: {} object(s) under s3://{}/{}",
        remote.len(),
        p.bucket,
        p.target
    ));
    let mut checks = Vec::new();
    for (i, item) in plan.items.iter().enumerate() {
        if let Some((size, etag)) = remote.get(&item.key)
            && *size == item.size
        {
            checks.push((i, item.path.clone(), item.size, etag.clone()));
        }
    }
    let sse_etag_unusable = matches!(p.sse, Sse::Kms { .. } | Sse::Customer(_));
    // Some S3-compatible stores list objects without their ETags: read
    // those of the same-size candidates with HeadObject instead of
    // uploading everything again.
    let unlisted: Vec<String> = checks
        .iter()
        .filter(|c| c.3.is_empty())
        .map(|c| plan.items[c.0].key.clone())
        .collect();
    if !unlisted.is_empty() && !sse_etag_unusable {
        console.info(&format!(
            "Sync: the listing gives no ETags; reading {} with HeadObject",
            unlisted.len()
        ));
        let etags = head_etags(client, p, unlisted).await;
        for c in &mut checks {
            if c.3.is_empty()
                && let Some(e) = etags.get(&plan.items[c.0].key)
            {
                c.3 = e.clone();
            }
        }
    }
    // Hash the same-size candidates off the async threads.
    let results = tokio::task::spawn_blocking(move || {
        checks
            .into_iter()
            .map(|(i, path, size, remote_etag)| {
                (i, local_etag(&path, size).map(|e| e == remote_etag))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    for (i, same) in results {
        if same? {
            plan.items[i].action = Action::Skip;
        }
    }
    if sse_etag_unusable && plan.count(Action::Skip) == 0 && !remote.is_empty() {
        console.info("With SSE-KMS or SSE-C, S3's ETag is not an MD5 of the content: identical files cannot be recognised and are uploaded again.");
    }
    if p.delete_removed {
        let local: std::collections::HashSet<&str> =
            plan.items.iter().map(|i| i.key.as_str()).collect();
        let prefix = list_prefix(p);
        plan.deletes = remote
            .keys()
            .filter(|k| !local.contains(k.as_str()))
            .filter(|k| {
                p.patterns
                    .matches(k.strip_prefix(prefix.as_str()).unwrap_or(k))
            })
            .cloned()
            .collect();
        plan.deletes.sort();
    }
    Ok(plan)
}

/// The ETags of `keys` by HeadObject, `maxConcurrency` at a time. A key
/// whose HEAD fails is left out (its file is uploaded).
async fn head_etags(
    client: &aws_sdk_s3::Client,
    p: &Params,
    keys: Vec<String>,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    let mut record = |joined: Result<Option<(String, String)>, tokio::task::JoinError>| {
        if let Ok(Some((k, e))) = joined {
            out.insert(k, e);
        }
    };
    for key in keys {
        while set.len() >= p.concurrency {
            if let Some(joined) = set.join_next().await {
                record(joined);
            }
        }
        let (client, bucket) = (client.clone(), p.bucket.clone());
        set.spawn(async move {
            let head = client.head_object().bucket(bucket).key(&key).send().await;
            let etag = head.ok()?.e_tag()?.trim_matches('"').to_string();
            Some((key, etag))
        });
    }
    while let Some(joined) = set.join_next().await {
        record(joined);
    }
    out
}

/// The listing prefix: the target folder as a folder (`a/b/`), so that `a/bc`
/// is not taken for part of `a/b`.
fn list_prefix(p: &Params) -> String {
    let t = join_key(&p.target, "");
    if t.is_empty() {
        t
    } else {
        format!("{}/", t.trim_end_matches('/'))
    }
}

async fn list_remote(
    client: &aws_sdk_s3::Client,
    p: &Params,
) -> Result<HashMap<String, (u64, String)>> {
    let mut out = HashMap::new();
    let prefix = list_prefix(p);
    let mut pages = client
        .list_objects_v2()
        .bucket(&p.bucket)
        .set_prefix((!prefix.is_empty()).then_some(prefix.clone()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow!(
                "Listing s3://{}/{prefix} failed: {}",
                p.bucket,
                vsts_aws_common::sdk_error_text(&e)
            )
        })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                let etag = o.e_tag().unwrap_or("").trim_matches('"').to_string();
                out.insert(k.to_string(), (o.size().unwrap_or(0).max(0) as u64, etag));
            }
        }
    }
    Ok(out)
}

/// The ETag S3 gives an object uploaded the way this task uploads it: the MD5
/// for a single PUT, the MD5 of the part MD5s plus `-<parts>` for multipart.
pub fn local_etag(path: &std::path::Path, size: u64) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    // No bigger than the file: zeroing 1 MiB for each of 50,000 small
    // files costs more than hashing them.
    let mut buf = vec![0u8; size.clamp(1, 1 << 20) as usize];
    if size < MULTIPART_THRESHOLD {
        let mut h = Md5::new();
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        return Ok(hex(&h.finalize()));
    }
    let part = part_size(size);
    let mut all = Md5::new();
    let mut parts = 0;
    let mut remaining = size;
    while remaining > 0 {
        let mut left = part.min(remaining);
        remaining -= left;
        let mut h = Md5::new();
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                bail!("{} changed while it was read", path.display());
            }
            h.update(&buf[..n]);
            left -= n as u64;
        }
        all.update(h.finalize());
        parts += 1;
    }
    Ok(format!("{}-{parts}", hex(&all.finalize())))
}
