//! The bucket itself: checked (and created on request) before the
//! transfers, and cleared of stale objects after a sync.

use anyhow::{Result, anyhow, bail};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

use crate::params::Params;

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
