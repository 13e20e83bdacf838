//! Where the template comes from, as CloudFormation takes it: the body, a
//! URL (a local template uploaded first when a bucket is given; S3 sources
//! presigned), or the stack's previous template.

use std::time::Duration;

use anyhow::{Context, Result};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_task::Task;

use crate::params::{Params, Template};

/// The template as the API takes it.
#[derive(Debug, Clone)]
pub(crate) enum Spec {
    Body(String),
    Url(String),
    Previous,
}

/// Uploads a local template when a bucket is given; presigns S3 sources.
pub(crate) async fn template_spec(task: &Task, setup: &AwsSetup, p: &Params) -> Result<Spec> {
    Ok(match &p.template {
        Template::File {
            body, bucket: None, ..
        } => Spec::Body(body.clone()),
        Template::File {
            path,
            body,
            bucket: Some(bucket),
        } => {
            let key = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "template".into());
            let s3 = vsts_s3::client(task, setup, false, None);
            task.console.info(&format!(
                "Uploading the template ({} bytes) to s3://{bucket}/{key}",
                body.len()
            ));
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.clone().into_bytes().into())
                .send()
                .await
                .sdk_context(|| format!("uploading the template to s3://{bucket}/{key}"))?;
            Spec::Url(presign(&s3, bucket, &key).await?)
        }
        Template::Url(u) => Spec::Url(u.clone()),
        Template::S3 { bucket, key } => {
            Spec::Url(presign(&vsts_s3::client(task, setup, false, None), bucket, key).await?)
        }
        Template::UsePrevious => Spec::Previous,
    })
}

/// A presigned GET URL, as the original sends: CloudFormation reads the
/// template with it whatever the bucket's policy. Never printed.
async fn presign(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String> {
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(3600))
        .context("presigning configuration")?;
    let req = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .sdk_context(|| format!("presigning s3://{bucket}/{key}"))?;
    Ok(req.uri().to_string())
}
