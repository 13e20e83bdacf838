//! LambdaDeployFunction: updates a function's code (`codeonly`), or its
//! configuration and code, creating it when missing
//! (`codeandconfiguration`).
//!
//! Beyond the original: `architectures` (x86_64/arm64), `ephemeralStorage`,
//! a folder as code (zipped deterministically: the same files give the same
//! CodeSha256, so an unchanged deploy is recognised and reported),
//! `aliasName` pointed at the published version, `versionOutputVariable`.
//! Every change waits until Lambda reports the function Active and its last
//! update Successful; a failed update fails the task with Lambda's reason.
//! Empty VPC or environment settings are never sent, so they cannot wipe
//! what the function already has.

mod params;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, DeadLetterConfig, Environment, EphemeralStorage, FunctionCode, LastUpdateStatus,
    Runtime, State, TracingConfig, TracingMode, VpcConfig,
};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Console, Task, VariableOptions};

pub use params::{Code, Config, DIRECT_UPLOAD_LIMIT, Params};

const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("functionName", 140, "a Lambda function name or ARN"),
    line("description", 256, "a Lambda function description"),
    line("functionHandler", 128, "a Lambda handler"),
    line("runtime", 64, "a Lambda runtime identifier"),
    line("localZipFile", ceiling::PATH, "a file path"),
    line("localFolder", ceiling::PATH, "a folder path"),
    line("s3Bucket", 63, "an S3 bucket name"),
    line("s3ObjectKey", 1024, "an S3 object key"),
    line("s3ObjectVersion", 1024, "an S3 object version"),
    line("roleARN", ceiling::ARN, "an IAM role name or ARN"),
    line("memorySize", ceiling::NUMBER, "a number"),
    line("timeout", ceiling::NUMBER, "a number"),
    line("ephemeralStorage", ceiling::NUMBER, "a number"),
    line("aliasName", 128, "a Lambda alias name"),
    lines("layers", ceiling::TEXT, "a list of layer version ARNs"),
    line("deadLetterARN", ceiling::ARN, "an ARN"),
    line("kmsKeyARN", ceiling::ARN, "a KMS key ARN"),
    lines(
        "environment",
        4096,
        "Lambda's 4 KB for all environment variables",
    ),
    lines("tags", ceiling::TEXT, "a list of tags"),
    lines(
        "securityGroups",
        ceiling::TEXT,
        "a list of security group IDs",
    ),
    lines("subnets", ceiling::TEXT, "a list of subnet IDs"),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
    line(
        "versionOutputVariable",
        ceiling::VARIABLE,
        "a variable name",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

/// The zip of a folder, the same bytes for the same files: entries sorted,
/// fixed timestamps, modes 644 (755 for executables).
pub fn zip_folder(dir: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)?
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, entry.path().to_path_buf()));
        }
    }
    if files.is_empty() {
        bail!(
            "Input 'localFolder': {} has no files to deploy.",
            dir.display()
        );
    }
    files.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (rel, path) in files {
        #[cfg(unix)]
        let executable = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&path)?.permissions().mode() & 0o111 != 0
        };
        #[cfg(not(unix))]
        let executable = false;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if executable { 0o755 } else { 0o644 });
        zip.start_file(rel.as_str(), opts)?;
        zip.write_all(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Lambda's CodeSha256: base64 of the SHA-256 of the zip.
pub fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// The code to send: zip bytes (with their CodeSha256) or an S3 location.
enum Payload {
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

fn payload(code: &Code) -> Result<Payload> {
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
            let bytes = zip_folder(dir)?;
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

/// A role name becomes its ARN through IAM.
async fn role_arn(setup: &AwsSetup, task: &Task, role: &str) -> Result<String> {
    if role.starts_with("arn:") {
        return Ok(role.to_string());
    }
    let iam = vsts_aws_common::client!(aws_sdk_iam, task, setup);
    let out = iam.get_role().role_name(role).send().await.map_err(|e| {
        if vsts_aws_common::is_not_found(&e) {
            anyhow!(
                "Input 'roleARN': role '{role}' was not found in IAM. Give its name or full ARN."
            )
        } else {
            anyhow!(
                "Input 'roleARN': looking up role '{role}' failed: {}",
                sdk_error_text(&e)
            )
        }
    })?;
    Ok(out.role.map(|r| r.arn).unwrap_or_default())
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let lambda = vsts_aws_common::client!(aws_sdk_lambda, task, setup);
    let code = payload(&p.code)?;
    let existing = match lambda
        .get_function()
        .function_name(&p.function)
        .send()
        .await
    {
        Ok(out) => out.configuration,
        Err(e) if vsts_aws_common::is_not_found(&e) => None,
        Err(e) => bail!(
            "Reading function '{}' failed: {}",
            p.function,
            sdk_error_text(&e)
        ),
    };
    let role = match &p.config {
        Some(c) => Some(role_arn(setup, task, &c.role).await?),
        None => None,
    };
    let arn = match (&existing, &p.config) {
        (None, None) => bail!(
            "Function '{}' does not exist in region {}, and deploymentMode 'codeonly' cannot create it. Use 'codeandconfiguration' to create it.",
            p.function,
            setup.region
        ),
        (None, Some(config)) => {
            create(console, &lambda, p, config, role.unwrap_or_default(), code).await?
        }
        (Some(current), config) => {
            if let Some(config) = config {
                configure(console, &lambda, p, config, role.unwrap_or_default()).await?;
                wait(console, &lambda, &p.function).await?;
                tag(
                    console,
                    &lambda,
                    p,
                    current.function_arn().unwrap_or_default(),
                )
                .await;
            }
            update_code(console, &lambda, p, current.code_sha256(), code).await?
        }
    };
    let version = if p.publish {
        let out = lambda
            .publish_version()
            .function_name(&p.function)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Publishing a version of '{}' failed: {}",
                    p.function,
                    sdk_error_text(&e)
                )
            })?;
        let version = out.version().unwrap_or_default().to_string();
        console.info(&format!("Published version {version}"));
        wait(console, &lambda, &p.function).await?;
        Some(version)
    } else {
        None
    };
    if let (Some(alias), Some(version)) = (&p.alias, &version) {
        point_alias(console, &lambda, &p.function, alias, version).await?;
    }
    if let Some(name) = &p.output_variable {
        console.set_variable(name, &arn, VariableOptions::default());
    }
    if let (Some(name), Some(version)) = (&p.version_variable, &version) {
        console.set_variable(name, version, VariableOptions::default());
    }
    console.info(&format!("Function {} deployed: {arn}", p.function));
    Ok(())
}

fn vpc(p: &Params) -> Option<VpcConfig> {
    (!p.subnets.is_empty() || !p.security_groups.is_empty()).then(|| {
        VpcConfig::builder()
            .set_subnet_ids(Some(p.subnets.clone()))
            .set_security_group_ids(Some(p.security_groups.clone()))
            .build()
    })
}

fn environment(p: &Params) -> Option<Environment> {
    (!p.environment.is_empty()).then(|| {
        Environment::builder()
            .set_variables(Some(p.environment.iter().cloned().collect()))
            .build()
    })
}

/// The configuration fields that creating and updating share (two builder
/// types, one list).
macro_rules! config_fields {
    ($req:expr, $p:expr, $c:expr, $role:expr) => {
        $req.handler(&$c.handler)
            .runtime(Runtime::from($c.runtime.as_str()))
            .role($role)
            .memory_size($c.memory)
            .timeout($c.timeout)
            .set_description($c.description.clone())
            .set_layers((!$c.layers.is_empty()).then(|| $c.layers.clone()))
            .set_kms_key_arn($p.kms_key.clone())
            .set_dead_letter_config(
                $p.dead_letter
                    .as_ref()
                    .map(|t| DeadLetterConfig::builder().target_arn(t).build()),
            )
            .set_environment(environment($p))
            .set_vpc_config(vpc($p))
            .set_tracing_config($p.tracing.as_ref().map(|m| {
                TracingConfig::builder()
                    .mode(TracingMode::from(m.as_str()))
                    .build()
            }))
            .set_ephemeral_storage(
                $c.ephemeral_storage
                    .map(|s| EphemeralStorage::builder().size(s).build())
                    .transpose()?,
            )
    };
}

async fn create(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    p: &Params,
    c: &Config,
    role: String,
    code: Payload,
) -> Result<String> {
    console.info(&format!("Creating function {}", p.function));
    let fc = match code {
        Payload::Zip { bytes, .. } => FunctionCode::builder().zip_file(Blob::new(bytes)).build(),
        Payload::S3 {
            bucket,
            key,
            version,
        } => FunctionCode::builder()
            .s3_bucket(bucket)
            .s3_key(key)
            .set_s3_object_version(version)
            .build(),
    };
    let req = lambda.create_function().function_name(&p.function).code(fc);
    let out = config_fields!(req, p, c, role)
        .set_architectures(
            p.architecture
                .as_ref()
                .map(|a| vec![Architecture::from(a.as_str())]),
        )
        .set_tags((!p.tags.is_empty()).then(|| p.tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Creating function '{}' failed: {}",
                p.function,
                sdk_error_text(&e)
            )
        })?;
    wait(console, lambda, &p.function).await?;
    Ok(out.function_arn().unwrap_or_default().to_string())
}

async fn configure(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    p: &Params,
    c: &Config,
    role: String,
) -> Result<()> {
    console.info(&format!("Updating the configuration of {}", p.function));
    let req = lambda
        .update_function_configuration()
        .function_name(&p.function);
    config_fields!(req, p, c, role).send().await.map_err(|e| {
        anyhow!(
            "Updating the configuration of '{}' failed: {}",
            p.function,
            sdk_error_text(&e)
        )
    })?;
    Ok(())
}

/// Tags on an existing function: a failure is a warning, as in the original.
async fn tag(console: &Console, lambda: &aws_sdk_lambda::Client, p: &Params, arn: &str) {
    if p.tags.is_empty() {
        return;
    }
    let r = lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(p.tags.iter().cloned().collect()))
        .send()
        .await;
    if let Err(e) = r {
        console.warning(&format!(
            "Tagging {} failed: {}",
            p.function,
            sdk_error_text(&e)
        ));
    }
}

async fn update_code(
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

async fn point_alias(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<()> {
    let exists = match lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) if vsts_aws_common::is_not_found(&e) => false,
        Err(e) => bail!("Reading alias '{alias}' failed: {}", sdk_error_text(&e)),
    };
    if exists {
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Pointing alias '{alias}' at version {version} failed: {}",
                    sdk_error_text(&e)
                )
            })?;
    } else {
        lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|e| anyhow!("Creating alias '{alias}' failed: {}", sdk_error_text(&e)))?;
    }
    console.info(&format!("Alias {alias} -> version {version}"));
    Ok(())
}

/// Polls until the function is Active and its last update is not in
/// progress. A failed update fails with Lambda's reason. Without permission
/// to read the state: a warning and a short wait, as in the original.
pub async fn wait(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let conf = match lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
        {
            Ok(c) => c,
            Err(e) => {
                use aws_sdk_lambda::error::ProvideErrorMetadata;
                if e.code() == Some("AccessDeniedException") {
                    console.warning(&format!(
                        "Cannot read the state of {function} (lambda:GetFunctionConfiguration is not allowed): waiting 5 s instead."
                    ));
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    return Ok(());
                }
                bail!(
                    "Reading the state of '{function}' failed: {}",
                    sdk_error_text(&e)
                );
            }
        };
        let state = conf.state().cloned();
        let update = conf.last_update_status().cloned();
        if state == Some(State::Failed) || update == Some(LastUpdateStatus::Failed) {
            let reason = conf
                .last_update_status_reason()
                .or(conf.state_reason())
                .unwrap_or("no reason given");
            bail!("Lambda reports the update of '{function}' failed: {reason}");
        }
        // Spelled as Lambda spells them (Debug output is shallow in release).
        let shown_state = state.as_ref().map_or("-", |s| s.as_str());
        let shown_update = update.as_ref().map_or("-", |u| u.as_str());
        let active = matches!(state, None | Some(State::Active));
        let settled = !matches!(update, Some(LastUpdateStatus::InProgress));
        if active && settled {
            console.debug(&format!(
                "{function}: state {shown_state}, last update {shown_update}"
            ));
            return Ok(());
        }
        if start.elapsed() > WAIT_LIMIT {
            bail!(
                "'{function}' is still {shown_state} / {shown_update} after {} s.",
                WAIT_LIMIT.as_secs()
            );
        }
        console.info(&format!(
            "Waiting for {function}: state {shown_state}, last update {shown_update}"
        ));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_zips_are_deterministic() {
        let dir = std::env::temp_dir().join(format!("zipdet-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("index.py"), b"def handler(e, c): return e\n").unwrap();
        std::fs::write(dir.join("lib/util.py"), b"X = 1\n").unwrap();
        let a = zip_folder(&dir).unwrap();
        // A later modification time must not change the bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.join("lib/util.py"), b"X = 1\n").unwrap();
        let b = zip_folder(&dir).unwrap();
        assert_eq!(code_sha256(&a), code_sha256(&b));
        std::fs::write(dir.join("lib/util.py"), b"X = 2\n").unwrap();
        assert_ne!(code_sha256(&a), code_sha256(&zip_folder(&dir).unwrap()));
    }

    #[test]
    fn code_sha256_is_lambdas_format() {
        assert_eq!(
            code_sha256(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
