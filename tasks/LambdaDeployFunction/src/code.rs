//! The code to deploy: a zip file, a folder zipped deterministically, or an
//! S3 object; and the code update, skipped when the CodeSha256 is unchanged.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::Architecture;
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

use crate::params::{Code, DIRECT_UPLOAD_LIMIT, Params};
use crate::wait::wait;

pub use vsts_bundle::code_sha256;

/// The code to send: zip bytes (with their CodeSha256) or an S3 location.
pub(crate) enum Payload {
    Zip {
        bytes: Vec<u8>,
        sha: String,
    },
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

pub(crate) fn payload(code: &Code) -> Result<Payload> {
    let bytes = match code {
        Code::S3 {
            bucket,
            key,
            version,
        } => {
            return Ok(Payload::S3 {
                bucket: bucket.clone(),
                key: key.clone(),
                version: version.clone(),
            });
        }
        Code::Zip(path) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        Code::Folder(dir) => {
            let bytes = vsts_bundle::zip_folder(dir, "localFolder")?;
            if bytes.len() as u64 > DIRECT_UPLOAD_LIMIT {
                bail!(
                    "Input 'localFolder': the zipped folder is {:.1} MiB, over Lambda's 50 MiB limit for direct uploads. Zip it, upload it to S3 and set codeLocation to 's3object'.",
                    bytes.len() as f64 / 1048576.0
                );
            }
            bytes
        }
    };
    let sha = code_sha256(&bytes);
    Ok(Payload::Zip { bytes, sha })
}

/// Updates the function's code and waits for it; returns the function ARN.
pub(crate) async fn update_code(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    p: &Params,
    current_sha: Option<&str>,
    code: Payload,
) -> Result<String> {
    let req = lambda
        .update_function_code()
        .function_name(&p.function)
        .set_architectures(
            p.architecture
                .as_ref()
                .map(|a| vec![Architecture::from(a.as_str())]),
        );
    let req = match code {
        Payload::Zip { bytes, sha } => {
            if current_sha == Some(sha.as_str()) && p.architecture.is_none() {
                console.info(&format!(
                    "Code unchanged (CodeSha256 {sha}): no code update needed."
                ));
                let conf = lambda
                    .get_function_configuration()
                    .function_name(&p.function)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "Reading function '{}' failed: {}",
                            p.function,
                            sdk_error_text(&e)
                        )
                    })?;
                return Ok(conf.function_arn().unwrap_or_default().to_string());
            }
            req.zip_file(Blob::new(bytes))
        }
        Payload::S3 {
            bucket,
            key,
            version,
        } => req
            .s3_bucket(bucket)
            .s3_key(key)
            .set_s3_object_version(version),
    };
    console.info(&format!("Updating the code of {}", p.function));
    let out = req.send().await.map_err(|e| {
        anyhow!(
            "Updating the code of '{}' failed: {}",
            p.function,
            sdk_error_text(&e)
        )
    })?;
    console.info(&format!(
        "New CodeSha256 {}",
        out.code_sha256().unwrap_or("?")
    ));
    wait(console, lambda, &p.function).await?;
    Ok(out.function_arn().unwrap_or_default().to_string())
}
