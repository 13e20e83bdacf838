//! Multipart uploads of S3Upload's large files: the shared
//! `vsts_s3::transfer::multipart` (parallel parts with their CRC32, abort
//! on failure, registered in `Uploads` for a cancellation), started with
//! the object's headers.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::Semaphore;
use vsts_s3::Progress;
use vsts_s3::transfer::FileObject;

pub use vsts_s3::transfer::{MULTIPART_THRESHOLD, Uploads, part_size};

use crate::headers::{Headers, apply_common};
use crate::params::Sse;
use crate::plan::Item;
use crate::upload::Shared;

pub(crate) async fn multipart(
    s: &Shared,
    item: &Item,
    h: &Headers,
    limit: &Arc<Semaphore>,
    progress: &Arc<Progress>,
) -> Result<()> {
    let p = &s.params;
    let start = apply_common!(s.client.create_multipart_upload(), p, h);
    let file = FileObject {
        path: item.path.clone(),
        size: item.size,
        bucket: p.bucket.clone(),
        key: item.key.clone(),
    };
    let customer_key = match &p.sse {
        Sse::Customer(k) => Some(k),
        _ => None,
    };
    vsts_s3::transfer::multipart(
        &s.client,
        &s.uploads,
        &file,
        start,
        customer_key,
        limit,
        progress,
    )
    .await?;
    Ok(())
}
