//! The transfers: PutObject for small files, multipart (parts in parallel,
//! streamed from disk) for large ones, all under one limit of requests in
//! flight. Every multipart upload is registered until it completes, so a
//! failure or a cancellation can abort it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, Delete, ObjectIdentifier, ServerSideEncryption,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vsts_aws_common::sdk_error_text;
use vsts_s3::{Progress, human_bytes};
use vsts_task::{Console, Task};

use crate::params::{Params, Sse};
use crate::plan::{Action, Item, Plan};

/// Files from this size up go as multipart uploads.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
const PART: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Bodies up to this size are read whole.
const SMALL_BODY: u64 = 1024 * 1024;

/// 8 MiB parts, larger when needed to stay within S3's 10,000 parts.
pub fn part_size(size: u64) -> u64 {
    let min = size.div_ceil(MAX_PARTS);
    PART.max(min.div_ceil(1024 * 1024) * 1024 * 1024)
}

/// Multipart uploads in progress: upload id → key.
#[derive(Clone, Default)]
pub struct Uploads(Arc<Mutex<HashMap<String, String>>>);

impl Uploads {
    fn add(&self, id: &str, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.into(), key.into());
    }
    fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
    /// Aborts every multipart upload still registered; returns how many.
    pub async fn abort_all(&self, client: &aws_sdk_s3::Client, bucket: &str) -> usize {
        let all: Vec<(String, String)> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (id, key) in &all {
            let _ = client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await;
        }
        all.len()
    }
}

pub struct Report {
    pub uploaded: usize,
    pub bytes: u64,
    pub failures: Vec<(String, String)>,
    pub elapsed: Duration,
}

/// The bucket exists, or is created when `createBucket` is set.
pub async fn ensure_bucket(
    console: &Console,
    client: &aws_sdk_s3::Client,
    p: &Params,
    region: &str,
) -> Result<()> {
    let head = client.head_bucket().bucket(&p.bucket).send().await;
    let err = match head {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    match status {
        Some(404) => {}
        Some(403) => bail!(
            "Access to bucket '{}' is denied (HeadBucket returned 403): check the bucket name and that the credentials may use it.",
            p.bucket
        ),
        Some(301) => {
            let actual = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .unwrap_or("another region");
            bail!(
                "Bucket '{}' is in {actual}, not {region}: set the region input (regionName) to {actual}.",
                p.bucket
            );
        }
        _ => bail!(
            "Cannot reach bucket '{}': {}",
            p.bucket,
            sdk_error_text(&err)
        ),
    }
    if !p.create_bucket {
        bail!(
            "Bucket '{}' does not exist in region {region}. Create it, or set createBucket to let the task create it.",
            p.bucket
        );
    }
    if p.dry_run {
        console.info(&format!(
            "Dry run: would create bucket '{}' in {region}",
            p.bucket
        ));
        return Ok(());
    }
    console.info(&format!(
        "Bucket '{}' does not exist: creating it in {region}",
        p.bucket
    ));
    let mut req = client.create_bucket().bucket(&p.bucket);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send().await.map_err(|e| {
        anyhow!(
            "Creating bucket '{}' failed: {}",
            p.bucket,
            sdk_error_text(&e)
        )
    })?;
    Ok(())
}

/// Everything about an object but its body.
#[derive(Clone)]
struct Headers {
    content_type: String,
    cache_control: Option<String>,
}

fn headers_for(p: &Params, item: &Item) -> Headers {
    let content_type = p.content_type.clone().unwrap_or_else(|| {
        mime_guess::from_path(&item.rel)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string()
    });
    let cache_control = p
        .cache_control
        .iter()
        .find(|(glob, _)| glob.any(&item.rel))
        .map(|(_, v)| v.clone());
    Headers {
        content_type,
        cache_control,
    }
}

macro_rules! apply_common {
    ($req:expr, $p:expr, $h:expr) => {{
        let mut req = $req
            .content_type(&$h.content_type)
            .set_cache_control($h.cache_control.clone())
            .set_content_encoding($p.content_encoding.clone())
            .storage_class($p.storage_class.clone())
            .set_acl($p.acl.clone());
        req = match &$p.sse {
            Sse::None => req,
            Sse::Aes256 => req.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms { key_id } => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
            Sse::Customer(k) => req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.key_b64)
                .sse_customer_key_md5(&k.md5_b64),
        };
        req
    }};
}

macro_rules! apply_sse_c {
    ($req:expr, $sse:expr) => {{
        match $sse {
            Sse::Customer(k) => $req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.key_b64)
                .sse_customer_key_md5(&k.md5_b64),
            _ => $req,
        }
    }};
}

/// The CRC32 of a file range, base64 as S3 wants it. Sent as a header, it
/// lets S3 check every byte while the body goes out plain: the SDK's own
/// checksum of a streamed body needs aws-chunked encoding with a trailer,
/// which measured about 20% slower on a 512 MiB upload.
async fn range_crc32(item: &Item, offset: u64, len: u64) -> Result<String> {
    let path = item.path.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file =
            std::fs::File::open(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                bail!("{} changed while it was uploaded", path.display());
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        use base64::Engine;
        Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize().to_be_bytes()))
    })
    .await?
}

/// Small files whole, in one read; larger ranges streamed from disk in
/// 256 KiB reads, so memory stays flat whatever the size.
async fn body(item: &Item, offset: u64, len: u64) -> Result<ByteStream> {
    if offset == 0 && len == item.size && len <= SMALL_BODY {
        let bytes = tokio::fs::read(&item.path)
            .await
            .map_err(|e| anyhow!("{}: {e}", item.path.display()))?;
        if bytes.len() as u64 != len {
            bail!("{} changed size while it was uploaded", item.path.display());
        }
        return Ok(ByteStream::from(bytes));
    }
    ByteStream::read_from()
        .path(&item.path)
        .offset(offset)
        .length(Length::Exact(len))
        .buffer_size(256 * 1024)
        .build()
        .await
        .map_err(|e| anyhow!("{}: {e}", item.path.display()))
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
    let mut set = JoinSet::new();
    for item in todo {
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
    let mut report = Report {
        uploaded: 0,
        bytes: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = set.join_next().await {
        match joined {
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
        }
    }
    report.failures.sort();
    report.elapsed = started.elapsed();
    report
}

/// What the spawned uploads share.
struct Shared {
    client: aws_sdk_s3::Client,
    params: SharedParams,
    uploads: Uploads,
}

/// The parameters uploads need, owned (spawned tasks are 'static).
struct SharedParams {
    bucket: String,
    content_encoding: Option<String>,
    storage_class: aws_sdk_s3::types::StorageClass,
    acl: Option<aws_sdk_s3::types::ObjectCannedAcl>,
    sse: Sse,
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
        .body(body(item, 0, item.size).await?);
    let req = apply_common!(req, p, h);
    req.send()
        .await
        .map_err(|e| anyhow!("{}", sdk_error_text(&e)))?;
    progress.bytes(item.size);
    Ok(())
}

async fn multipart(
    s: &Shared,
    item: &Item,
    h: &Headers,
    limit: &Arc<Semaphore>,
    progress: &Arc<Progress>,
) -> Result<()> {
    let p = &s.params;
    let created = {
        let _permit = limit.acquire().await?;
        let req = s
            .client
            .create_multipart_upload()
            .bucket(&p.bucket)
            .key(&item.key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        apply_common!(req, p, h)
            .send()
            .await
            .map_err(|e| anyhow!("starting the multipart upload: {}", sdk_error_text(&e)))?
    };
    let id = created
        .upload_id()
        .ok_or_else(|| anyhow!("S3 returned no upload id"))?
        .to_string();
    s.uploads.add(&id, &item.key);
    let result = upload_parts(s, item, &id, limit, progress).await;
    match result {
        Ok(parts) => {
            let done = s
                .client
                .complete_multipart_upload()
                .bucket(&p.bucket)
                .key(&item.key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                );
            let done = apply_sse_c!(done, &p.sse);
            match done.send().await {
                Ok(_) => {
                    s.uploads.remove(&id);
                    Ok(())
                }
                Err(e) => {
                    abort(s, item, &id).await;
                    Err(anyhow!(
                        "completing the multipart upload: {}",
                        sdk_error_text(&e)
                    ))
                }
            }
        }
        Err(e) => {
            abort(s, item, &id).await;
            Err(e)
        }
    }
}

async fn abort(s: &Shared, item: &Item, id: &str) {
    let _ = s
        .client
        .abort_multipart_upload()
        .bucket(&s.params.bucket)
        .key(&item.key)
        .upload_id(id)
        .send()
        .await;
    s.uploads.remove(id);
}

async fn upload_parts(
    s: &Shared,
    item: &Item,
    id: &str,
    limit: &Arc<Semaphore>,
    progress: &Arc<Progress>,
) -> Result<Vec<CompletedPart>> {
    let part = part_size(item.size);
    let count = item.size.div_ceil(part);
    let mut set = JoinSet::new();
    let shared_item = Arc::new(item.clone());
    for n in 0..count {
        let offset = n * part;
        let len = part.min(item.size - offset);
        let client = s.client.clone();
        let bucket = s.params.bucket.clone();
        let sse = s.params.sse.clone();
        let id = id.to_string();
        let limit = limit.clone();
        let progress = progress.clone();
        let item = shared_item.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let number = (n + 1) as i32;
            let crc = range_crc32(&item, offset, len).await?;
            let req = client
                .upload_part()
                .bucket(&bucket)
                .key(&item.key)
                .upload_id(&id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .checksum_crc32(crc.clone())
                .body(body(&item, offset, len).await?);
            let req = apply_sse_c!(req, &sse);
            let out = req
                .send()
                .await
                .map_err(|e| anyhow!("part {number}: {}", sdk_error_text(&e)))?;
            progress.bytes(len);
            Ok::<_, anyhow::Error>(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_crc32(out.checksum_crc32().map(str::to_string).unwrap_or(crc))
                    .build(),
            )
        });
    }
    let mut parts = Vec::with_capacity(count as usize);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(part)) => parts.push(part),
            Ok(Err(e)) => {
                // The first failure stops the rest of this file's parts.
                set.abort_all();
                return Err(e);
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(anyhow!("internal error: {e}")),
        }
    }
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

/// Deletes stale objects, 1000 a request.
pub async fn delete_keys(
    console: &Console,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
) -> Result<usize> {
    let mut deleted = 0;
    for chunk in keys.chunks(1000) {
        let objects: Vec<ObjectIdentifier> = chunk
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<_, _>>()?;
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!("Deleting stale objects failed: {}", sdk_error_text(&e)))?;
        if let Some(err) = out.errors().first() {
            bail!(
                "Deleting s3://{bucket}/{} failed: {}",
                err.key().unwrap_or("?"),
                err.message().unwrap_or("no details")
            );
        }
        deleted += chunk.len();
        for k in chunk {
            console.info(&format!("deleted s3://{bucket}/{k}"));
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_stay_within_ten_thousand_parts() {
        assert_eq!(part_size(20 * 1024 * 1024), 8 * 1024 * 1024);
        let huge = 5 * 1024 * 1024 * 1024 * 1024u64; // 5 TiB, S3's maximum object
        assert!(huge.div_ceil(part_size(huge)) <= 10_000);
        assert_eq!(part_size(huge) % (1024 * 1024), 0);
    }
}
