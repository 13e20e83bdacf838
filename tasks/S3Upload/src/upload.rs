//! The transfers: PutObject for small files, multipart (see `multipart`)
//! for large ones, all under one limit of requests in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vsts_aws_common::sdk_error_text;
use vsts_s3::{Progress, human_bytes};
use vsts_task::Task;

use crate::headers::{Headers, apply_common, headers_for};
use crate::multipart::{MULTIPART_THRESHOLD, Uploads, multipart};
use crate::params::{Params, Sse};
use crate::plan::{Action, Item, Plan};

pub struct Report {
    pub uploaded: usize,
    pub bytes: u64,
    pub failures: Vec<(String, String)>,
    pub elapsed: Duration,
}

pub async fn upload_all(
    task: &Task,
    client: &aws_sdk_s3::Client,
    p: &Params,
    plan: &Plan,
    uploads: &Uploads,
) -> Report {
    let todo: Vec<&Item> = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Upload)
        .collect();
    let total: u64 = todo.iter().map(|i| i.size).sum();
    let progress = Arc::new(Progress::new(
        &task.console,
        "Uploaded",
        todo.len() as u64,
        total,
    ));
    let limit = Arc::new(Semaphore::new(p.concurrency));
    let started = Instant::now();
    let shared = Arc::new(Shared {
        client: client.clone(),
        params: SharedParams::from(p),
        uploads: uploads.clone(),
    });
    let mut report = Report {
        uploaded: 0,
        bytes: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut record = |joined: Result<(Item, Result<()>), tokio::task::JoinError>| match joined {
        Ok((item, Ok(()))) => {
            report.uploaded += 1;
            report.bytes += item.size;
            task.console.debug(&format!(
                "uploaded {} ({})",
                item.key,
                human_bytes(item.size)
            ));
        }
        Ok((item, Err(e))) => report.failures.push((item.key.clone(), format!("{e:#}"))),
        Err(e) => report
            .failures
            .push(("?".into(), format!("internal error: {e}"))),
    };
    // Files are started as others end (twice the request limit waiting at
    // most): with 50,000 files, 50,000 suspended uploads would hold
    // hundreds of MiB.
    let pending = p.concurrency.saturating_mul(2).max(16);
    let mut set = JoinSet::new();
    for item in todo {
        while set.len() >= pending {
            if let Some(joined) = set.join_next().await {
                record(joined);
            }
        }
        let item = item.clone();
        let headers = headers_for(p, &item);
        let shared = shared.clone();
        let limit = limit.clone();
        let progress = progress.clone();
        set.spawn(async move {
            let result = if item.size >= MULTIPART_THRESHOLD {
                multipart(&shared, &item, &headers, &limit, &progress).await
            } else {
                put(&shared, &item, &headers, &limit, &progress).await
            };
            progress.file_done();
            (item, result)
        });
    }
    while let Some(joined) = set.join_next().await {
        record(joined);
    }
    report.failures.sort();
    report.elapsed = started.elapsed();
    report
}

/// What the spawned uploads share.
pub(crate) struct Shared {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) params: SharedParams,
    pub(crate) uploads: Uploads,
}

/// The parameters uploads need, owned (spawned tasks are 'static).
pub(crate) struct SharedParams {
    pub(crate) bucket: String,
    pub(crate) content_encoding: Option<String>,
    pub(crate) storage_class: aws_sdk_s3::types::StorageClass,
    pub(crate) acl: Option<aws_sdk_s3::types::ObjectCannedAcl>,
    pub(crate) sse: Sse,
}

impl From<&Params> for SharedParams {
    fn from(p: &Params) -> Self {
        SharedParams {
            bucket: p.bucket.clone(),
            content_encoding: p.content_encoding.clone(),
            storage_class: p.storage_class.clone(),
            acl: p.acl.clone(),
            sse: p.sse.clone(),
        }
    }
}

async fn put(
    s: &Shared,
    item: &Item,
    h: &Headers,
    limit: &Semaphore,
    progress: &Progress,
) -> Result<()> {
    let _permit = limit.acquire().await?;
    let p = &s.params;
    let req = s
        .client
        .put_object()
        .bucket(&p.bucket)
        .key(&item.key)
        .body(vsts_s3::transfer::file_body(&item.path, item.size, 0, item.size).await?);
    let req = apply_common!(req, p, h);
    req.send()
        .await
        .map_err(|e| anyhow!("{}", sdk_error_text(&e)))?;
    progress.bytes(item.size);
    Ok(())
}
