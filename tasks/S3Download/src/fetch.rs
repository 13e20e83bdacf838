//! One object to one file. Large objects come as ranged GETs in parallel;
//! a body cut short is resumed from the bytes already written (a ranged GET
//! that must match the object's ETag), a few times, before the object
//! fails. Everything goes into a temporary file beside the destination,
//! renamed over it once complete, so a failed or cancelled download never
//! leaves a partial file under the object's name and never destroys the
//! file that was there.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio::task::JoinSet;
use vsts_aws_common::sdk_error_text;
use vsts_s3::{CustomerKey, Progress};
use vsts_task::Console;

use crate::Fetch;

/// Objects from this size on are fetched in parts, in parallel.
pub const PARALLEL_FROM: u64 = 16 * 1024 * 1024;
/// The size of one ranged GET.
const PART: u64 = 8 * 1024 * 1024;
/// Ranged GETs in flight for one object.
const PARTS_IN_FLIGHT: usize = 8;
/// Ranged GETs in flight for all objects together: memory stays bounded
/// however many large objects download at once.
pub const PARTS_IN_FLIGHT_TOTAL: usize = 16;
/// How often a body cut short is resumed before the object fails.
pub const RESUMES: u32 = 3;
/// Bytes gathered before one positional write to the file (at most this
/// much per GET in flight is held in memory).
const WRITE_BUFFER: usize = 256 * 1024;
/// Writes up to this size happen on the async thread (a small object's
/// whole body); larger ones on the blocking pool.
const WRITE_IN_PLACE: usize = 64 * 1024;

/// What every GET of one object needs.
pub struct Source {
    pub client: aws_sdk_s3::Client,
    pub console: Console,
    pub bucket: String,
    pub customer_key: Option<CustomerKey>,
    pub progress: Arc<Progress>,
    /// Permits for ranged GETs (`PARTS_IN_FLIGHT_TOTAL`).
    pub parts: Arc<tokio::sync::Semaphore>,
}

/// Downloads `f` into a temporary file beside `f.dest`, then renames it.
pub async fn fetch(src: &Arc<Source>, f: &Fetch) -> Result<()> {
    // Small file-system calls run in place: a hop to the blocking pool
    // costs more than they do, and thousands of small objects pay it each.
    let dir = f.dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = f.dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let (file, tmp) = tmp.into_parts();
    let file = Arc::new(file);
    if f.size >= PARALLEL_FROM {
        file.set_len(f.size)
            .with_context(|| format!("sizing {}", tmp.display()))?;
        let mut parts = JoinSet::new();
        let mut start = 0;
        let mut failed = None;
        while start < f.size || !parts.is_empty() {
            while start < f.size && parts.len() < PARTS_IN_FLIGHT {
                let end = (start + PART).min(f.size);
                let (src, file, f) = (src.clone(), file.clone(), f.clone());
                parts.spawn(async move {
                    let _permit = src.parts.clone().acquire_owned().await?;
                    get_range(&src, &file, &f, start, end, false).await
                });
                start = end;
            }
            match parts.join_next().await {
                Some(Ok(Ok(_))) | None => {}
                Some(Ok(Err(e))) => {
                    failed = Some(e);
                    break;
                }
                Some(Err(e)) => {
                    failed = Some(anyhow!("internal error: {e}"));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            parts.abort_all();
            while parts.join_next().await.is_some() {}
            return Err(e);
        }
    } else {
        let written = get_range(src, &file, f, 0, f.size, true).await?;
        // The object may have changed size since it was listed.
        file.set_len(written)
            .with_context(|| format!("sizing {}", tmp.display()))?;
    }
    drop(file);
    tmp.persist(&f.dest)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", f.dest.display()))?;
    Ok(())
}

/// Writes bytes `start..end` of the object at the same offsets of `file`,
/// resuming after a cut. `whole`: the first GET asks for the whole object
/// (no Range header; its length, not the listed size, decides the end).
/// Returns the end reached.
async fn get_range(
    src: &Source,
    file: &Arc<std::fs::File>,
    f: &Fetch,
    start: u64,
    mut end: u64,
    whole: bool,
) -> Result<u64> {
    let mut pos = start;
    let mut etag = f.etag.clone();
    let mut resumed = 0;
    loop {
        let ranged = !(whole && pos == start);
        let mut req = src
            .client
            .get_object()
            .bucket(&src.bucket)
            .key(&f.key)
            .set_if_match(etag.clone());
        if ranged {
            req = req.range(format!("bytes={pos}-{}", end.saturating_sub(1)));
        }
        if let Some(k) = &src.customer_key {
            req = req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.key_b64)
                .sse_customer_key_md5(&k.md5_b64);
        }
        let out = req.send().await.map_err(|e| {
            if resumed > 0 && e.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                anyhow!("the object changed while it was downloaded (its ETag no longer matches)")
            } else {
                anyhow!("{}", sdk_error_text(&e))
            }
        })?;
        if !ranged {
            end = start + out.content_length().unwrap_or(0).max(0) as u64;
            etag = etag.or_else(|| out.e_tag().map(str::to_string));
        } else if out.content_range().is_none() {
            // The whole object came back, not the range asked for: start
            // over when the whole object is what we want.
            if !whole {
                bail!("the endpoint ignored a ranged GET (no Content-Range in its answer)");
            }
            pos = start;
            end = start + out.content_length().unwrap_or(0).max(0) as u64;
        }
        let mut body = out.body;
        let mut buf: Vec<u8> = Vec::new();
        let cut = loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    if buf.len() >= WRITE_BUFFER {
                        pos = write_at(src, file, pos, std::mem::take(&mut buf)).await?;
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(error_causes(&e)),
            }
        };
        // Bytes that arrived before a cut are good: keep them.
        if !buf.is_empty() {
            pos = write_at(src, file, pos, buf).await?;
        }
        let cause = match cut {
            None if pos >= end => return Ok(pos),
            None => format!(
                "the answer ended after {} of {} bytes",
                pos - start,
                end - start
            ),
            Some(cause) => cause,
        };
        if resumed == RESUMES {
            bail!(
                "the connection failed after {} of {} bytes, {RESUMES} times in a row ({cause}); nothing was written to {}",
                pos - start,
                end - start,
                f.dest.display()
            );
        }
        resumed += 1;
        src.console.info(&format!(
            "s3://{}/{}: the connection failed after {} of {} bytes ({cause}); resuming from there",
            src.bucket,
            f.key,
            pos - start,
            end - start
        ));
    }
}

/// Writes `buf` at `offset` (off the async threads); returns the offset
/// after it and counts the bytes as progress.
async fn write_at(
    src: &Source,
    file: &Arc<std::fs::File>,
    offset: u64,
    buf: Vec<u8>,
) -> Result<u64> {
    let len = buf.len() as u64;
    if buf.len() <= WRITE_IN_PLACE {
        write_all_at(file, &buf, offset).context("writing the downloaded bytes")?;
    } else {
        let file = file.clone();
        tokio::task::spawn_blocking(move || write_all_at(&file, &buf, offset))
            .await
            .map_err(|e| anyhow!("internal error: {e}"))?
            .context("writing the downloaded bytes")?;
    }
    src.progress.bytes(len);
    Ok(offset + len)
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// An error and its sources, "outer: inner: ...", without repeats.
fn error_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
