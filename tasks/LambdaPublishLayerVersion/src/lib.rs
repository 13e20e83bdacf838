//! LambdaPublishLayerVersion (not in the original toolkit; its users ask
//! for it): publishes a layer version from a folder (zipped
//! deterministically: the same files give the same CodeSha256), a zip file,
//! or an S3 object, with its compatible runtimes and architectures,
//! description and licence. Archives over Lambda's 50 MiB direct-upload
//! limit, or any archive when `s3UploadBucket` is set, go through S3 (the
//! shared multipart upload, aborted on failure or cancellation); the staged
//! object is deleted once Lambda has copied it. With `skipIfUnchanged`, a
//! latest version with the same code and settings is reused instead of
//! publishing an identical one. The new version's ARN and number are set
//! as output variables (`layerVersionArn`, `layerVersion`).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, LayerVersionContentInput, Runtime};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_s3::human_bytes;
use vsts_s3::transfer::{FileObject, Uploads};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Console, Task, VariableOptions};

/// Lambda's limit for a zip uploaded directly (larger code goes through S3).
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("layerName", 140, "a layer name or ARN"),
    line("localFolder", ceiling::PATH, "a folder path"),
    line("localZipFile", ceiling::PATH, "a file path"),
    line("s3Bucket", 63, "an S3 bucket name"),
    line("s3ObjectKey", 1024, "an S3 object key"),
    line("s3ObjectVersion", 1024, "an S3 object version"),
    line("s3UploadBucket", 63, "an S3 bucket name"),
    line("s3UploadPrefix", 900, "an S3 key prefix"),
    line(
        "description",
        256,
        "Lambda's 256 characters for a layer description",
    ),
    line(
        "licenseInfo",
        512,
        "Lambda's 512 characters for licence information",
    ),
    lines(
        "compatibleRuntimes",
        ceiling::TEXT,
        "a list of runtime identifiers",
    ),
    line(
        "compatibleArchitectures",
        ceiling::TEXT,
        "x86_64, arm64 or both",
    ),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Folder(PathBuf),
    Zip(PathBuf),
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

#[derive(Debug)]
pub struct Params {
    pub layer: String,
    pub content: Content,
    /// Where archives go on their way to Lambda, when set: (bucket, prefix).
    pub upload: Option<(String, String)>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub runtimes: Vec<String>,
    pub architectures: Vec<String>,
    pub skip_if_unchanged: bool,
    pub output_variable: Option<String>,
}

fn valid_layer_name(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        return parts.len() == 6 && parts[1] == "lambda" && parts[4] == "layer";
    }
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        let layer = i.required("layerName")?;
        if !valid_layer_name(&layer) {
            bail!(
                "Input 'layerName': '{layer}' is not a layer name (letters, digits, '-' and '_') or a layer ARN without version."
            );
        }
        let content = match i
            .pick("codeLocation", &["localfolder", "localfile", "s3object"])?
            .unwrap_or("localfolder")
        {
            "s3object" => Content::S3 {
                bucket: i.get("s3Bucket").ok_or_else(|| {
                    anyhow!("Input required: s3Bucket (codeLocation is 's3object')")
                })?,
                key: i.get("s3ObjectKey").ok_or_else(|| {
                    anyhow!("Input required: s3ObjectKey (codeLocation is 's3object')")
                })?,
                version: i.get("s3ObjectVersion"),
            },
            "localfile" => {
                let path = i.existing_file("localZipFile")?.ok_or_else(|| {
                    anyhow!("Input required: localZipFile (codeLocation is 'localfile')")
                })?;
                check_zip(&path)?;
                Content::Zip(path)
            }
            _ => Content::Folder(i.existing_dir("localFolder")?.ok_or_else(|| {
                anyhow!("Input required: localFolder (codeLocation is 'localfolder')")
            })?),
        };
        let runtimes: Vec<String> = i
            .lines("compatibleRuntimes")
            .iter()
            .flat_map(|l| l.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if runtimes.len() > 15 {
            bail!(
                "Input 'compatibleRuntimes': {} runtimes given; a layer takes at most 15.",
                runtimes.len()
            );
        }
        if let Some(bad) = runtimes.iter().find(|r| {
            !r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }) {
            bail!(
                "Input 'compatibleRuntimes': '{bad}' is not a runtime identifier (for example python3.12, nodejs20.x, java21, provided.al2023)."
            );
        }
        let mut architectures: Vec<String> = Vec::new();
        for a in i.list("compatibleArchitectures", ',') {
            if !["x86_64", "arm64"].contains(&a.as_str()) {
                bail!(
                    "Input 'compatibleArchitectures': '{a}' is not an architecture; allowed: x86_64, arm64."
                );
            }
            if !architectures.contains(&a) {
                architectures.push(a);
            }
        }
        let upload = i
            .get("s3UploadBucket")
            .map(|b| (b, i.get("s3UploadPrefix").unwrap_or_default()));
        Ok(Params {
            layer,
            content,
            upload,
            description: i.get("description"),
            license: i.get("licenseInfo"),
            runtimes,
            architectures,
            skip_if_unchanged: i.bool("skipIfUnchanged"),
            output_variable: i.get("outputVariable"),
        })
    }
}

/// A zip file, by its first bytes.
fn check_zip(path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .read(&mut magic)?;
    if n < 4 || !(magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
        bail!(
            "Input 'localZipFile': {} is not a zip file.",
            path.display()
        );
    }
    Ok(())
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    let uploads = Uploads::default();
    let work = execute(&task, &setup, &params, &uploads);
    tokio::select! {
        result = work => result,
        signal = vsts_task::cancelled() => {
            let s3 = vsts_s3::client(&task, &setup, false, None);
            let aborted = uploads.abort_all(&s3).await;
            Err(anyhow!("Cancelled ({signal}); {aborted} unfinished multipart upload(s) aborted."))
        }
    }
}

/// The archive to publish: on disk (zipped from a folder into the agent's
/// temporary folder, removed when dropped) or already in S3.
enum Archive {
    Local {
        path: PathBuf,
        temporary: bool,
    },
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

impl Drop for Archive {
    fn drop(&mut self) {
        if let Archive::Local {
            path,
            temporary: true,
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params, uploads: &Uploads) -> Result<()> {
    let console = &task.console;
    let lambda = vsts_aws_common::client!(aws_sdk_lambda, task, setup);
    let archive = match &p.content {
        Content::Folder(dir) => {
            let path = task.temp_dir().join(format!(
                "layer-{}-{}.zip",
                short_name(&p.layer),
                std::process::id()
            ));
            let (src, dest) = (dir.clone(), path.clone());
            let size = tokio::task::spawn_blocking(move || {
                vsts_bundle::zip_folder_to_file(&src, "localFolder", &dest)
            })
            .await??;
            console.info(&format!("Zipped {} ({})", dir.display(), human_bytes(size)));
            Archive::Local {
                path,
                temporary: true,
            }
        }
        Content::Zip(path) => Archive::Local {
            path: path.clone(),
            temporary: false,
        },
        Content::S3 {
            bucket,
            key,
            version,
        } => Archive::S3 {
            bucket: bucket.clone(),
            key: key.clone(),
            version: version.clone(),
        },
    };
    let local_sha = match &archive {
        Archive::Local { path, .. } => {
            let path = path.clone();
            Some(tokio::task::spawn_blocking(move || vsts_bundle::file_code_sha256(&path)).await??)
        }
        Archive::S3 { .. } => None,
    };

    if p.skip_if_unchanged
        && let Some((arn, version)) = unchanged(&lambda, p, local_sha.as_deref()).await?
    {
        console.info(&format!(
            "The latest version of layer {} ({version}) has the same code and settings: nothing published.",
            p.layer
        ));
        return outputs(console, p, &arn, version);
    }

    let mut staged: Option<(String, String)> = None;
    let content = match &archive {
        Archive::S3 {
            bucket,
            key,
            version,
        } => LayerVersionContentInput::builder()
            .s3_bucket(bucket)
            .s3_key(key)
            .set_s3_object_version(version.clone())
            .build(),
        Archive::Local { path, .. } => {
            let size = std::fs::metadata(path)
                .with_context(|| format!("reading {}", path.display()))?
                .len();
            match &p.upload {
                None if size > DIRECT_UPLOAD_LIMIT => bail!(
                    "The layer archive is {}, over Lambda's 50 MiB limit for direct uploads. Set 's3UploadBucket' to send it through S3.",
                    human_bytes(size)
                ),
                None => LayerVersionContentInput::builder()
                    .zip_file(Blob::new(
                        tokio::fs::read(path)
                            .await
                            .with_context(|| format!("reading {}", path.display()))?,
                    ))
                    .build(),
                Some((bucket, prefix)) => {
                    let s3 = vsts_s3::client(task, setup, false, None);
                    let sha_hex = local_sha.as_deref().map(base64_to_hex).unwrap_or_default();
                    let key = vsts_s3::join_key(
                        prefix,
                        &format!(
                            "{}-{}.zip",
                            short_name(&p.layer),
                            &sha_hex[..16.min(sha_hex.len())]
                        ),
                    );
                    let file = FileObject {
                        path: path.clone(),
                        size,
                        bucket: bucket.clone(),
                        key: key.clone(),
                    };
                    let version =
                        vsts_s3::transfer::upload_file(console, &s3, uploads, &file, None)
                            .await?
                            .version;
                    staged = Some((bucket.clone(), key.clone()));
                    LayerVersionContentInput::builder()
                        .s3_bucket(bucket)
                        .s3_key(&key)
                        .set_s3_object_version(version)
                        .build()
                }
            }
        }
    };

    console.info(&format!("Publishing a version of layer {}", p.layer));
    let published = lambda
        .publish_layer_version()
        .layer_name(&p.layer)
        .content(content)
        .set_description(p.description.clone())
        .set_license_info(p.license.clone())
        .set_compatible_runtimes((!p.runtimes.is_empty()).then(|| {
            p.runtimes
                .iter()
                .map(|r| Runtime::from(r.as_str()))
                .collect()
        }))
        .set_compatible_architectures((!p.architectures.is_empty()).then(|| {
            p.architectures
                .iter()
                .map(|a| Architecture::from(a.as_str()))
                .collect()
        }))
        .send()
        .await;
    // Lambda has copied the archive (or refused it): the staged copy goes.
    if let Some((bucket, key)) = &staged {
        let s3 = vsts_s3::client(task, setup, false, None);
        if let Err(e) = s3.delete_object().bucket(bucket).key(key).send().await {
            console.warning(&format!(
                "Deleting the staged archive s3://{bucket}/{key} failed: {}",
                sdk_error_text(&e)
            ));
        }
    }
    let published = published.map_err(|e| {
        anyhow!(
            "Publishing a version of layer '{}' failed: {}",
            p.layer,
            sdk_error_text(&e)
        )
    })?;
    let arn = published
        .layer_version_arn()
        .ok_or_else(|| anyhow!("Lambda returned no layer version ARN"))?
        .to_string();
    let version = published.version();
    let size = published
        .content()
        .map(|c| human_bytes(c.code_size().max(0) as u64))
        .unwrap_or_default();
    console.info(&format!(
        "Published version {version} of layer {} ({size}, CodeSha256 {}): {arn}",
        p.layer,
        published
            .content()
            .and_then(|c| c.code_sha256())
            .unwrap_or("?")
    ));
    outputs(console, p, &arn, version)
}

fn outputs(console: &Console, p: &Params, arn: &str, version: i64) -> Result<()> {
    let plain = VariableOptions::default();
    console.set_variable("layerVersionArn", arn, plain);
    console.set_variable("layerVersion", &version.to_string(), plain);
    if let Some(name) = &p.output_variable {
        console.set_variable(name, arn, plain);
    }
    Ok(())
}

/// The latest version, when it has this code (by CodeSha256; for an S3
/// object, never: its hash is not known here) and these settings.
async fn unchanged(
    lambda: &aws_sdk_lambda::Client,
    p: &Params,
    sha: Option<&str>,
) -> Result<Option<(String, i64)>> {
    let Some(sha) = sha else {
        return Ok(None);
    };
    let listed = match lambda
        .list_layer_versions()
        .layer_name(&p.layer)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if vsts_aws_common::is_not_found(&e) => return Ok(None),
        Err(e) => bail!(
            "Listing the versions of layer '{}' failed: {}",
            p.layer,
            sdk_error_text(&e)
        ),
    };
    let Some(latest) = listed.layer_versions().iter().max_by_key(|v| v.version()) else {
        return Ok(None);
    };
    let got = lambda
        .get_layer_version()
        .layer_name(&p.layer)
        .version_number(latest.version())
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Reading version {} of layer '{}' failed: {}",
                latest.version(),
                p.layer,
                sdk_error_text(&e)
            )
        })?;
    let same_code = got.content().and_then(|c| c.code_sha256()) == Some(sha);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let same_settings = got.description().unwrap_or("") == p.description.as_deref().unwrap_or("")
        && got.license_info().unwrap_or("") == p.license.as_deref().unwrap_or("")
        && sorted(
            got.compatible_runtimes()
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        ) == sorted(p.runtimes.clone())
        && sorted(
            got.compatible_architectures()
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
        ) == sorted(p.architectures.clone());
    Ok((same_code && same_settings).then(|| {
        (
            got.layer_version_arn().unwrap_or_default().to_string(),
            got.version(),
        )
    }))
}

/// The layer's name, from a name or a layer ARN.
fn short_name(layer: &str) -> &str {
    layer.rsplit(':').next().unwrap_or(layer)
}

fn base64_to_hex(b64: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = String::new();
    for c in b64.bytes().take_while(|&c| c != b'=') {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            break;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push_str(&format!("{:02x}", (bits >> n) & 0xff));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_and_arns() {
        assert!(valid_layer_name("my-deps_2"));
        assert!(valid_layer_name(
            "arn:aws:lambda:eu-west-1:123456789012:layer:deps"
        ));
        assert!(!valid_layer_name("my deps"));
        assert!(!valid_layer_name(
            "arn:aws:lambda:eu-west-1:123456789012:layer:deps:3"
        ));
    }

    #[test]
    fn staged_keys_use_the_hex_hash() {
        // base64 of 0x00 0x01 ... as Lambda writes CodeSha256.
        assert_eq!(base64_to_hex("AAEC/w=="), "000102ff");
    }
}
