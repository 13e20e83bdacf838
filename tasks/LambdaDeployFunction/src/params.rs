//! LambdaDeployFunction's inputs, checked before the first AWS call.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use vsts_task::Task;

/// Lambda's limit for a zip uploaded directly (larger code goes through S3).
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum Code {
    Zip(PathBuf),
    Folder(PathBuf),
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub description: Option<String>,
    pub handler: String,
    pub runtime: String,
    pub role: String,
    pub memory: i32,
    pub timeout: i32,
    /// The `layers` lines as given.
    pub layer_refs: Vec<crate::layers::LayerRef>,
    /// Their version ARNs, resolved by `execute` before anything changes.
    pub layers: Vec<String>,
    pub ephemeral_storage: Option<i32>,
}

#[derive(Debug)]
pub struct Params {
    pub create_or_configure: bool,
    pub function: String,
    pub code: Code,
    pub config: Option<Config>,
    pub publish: bool,
    pub alias: Option<String>,
    pub architecture: Option<String>,
    pub dead_letter: Option<String>,
    pub kms_key: Option<String>,
    pub environment: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub security_groups: Vec<String>,
    pub subnets: Vec<String>,
    pub tracing: Option<String>,
    pub output_variable: Option<String>,
    pub version_variable: Option<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        let create_or_configure = i
            .pick("deploymentMode", &["codeonly", "codeandconfiguration"])?
            .unwrap_or("codeonly")
            == "codeandconfiguration";
        let code = match i
            .pick("codeLocation", &["localfile", "localfolder", "s3object"])?
            .unwrap_or("localfile")
        {
            "s3object" => Code::S3 {
                bucket: i.get("s3Bucket").ok_or_else(|| {
                    anyhow!("Input required: s3Bucket (codeLocation is 's3object')")
                })?,
                key: i.get("s3ObjectKey").ok_or_else(|| {
                    anyhow!("Input required: s3ObjectKey (codeLocation is 's3object')")
                })?,
                version: i.get("s3ObjectVersion"),
            },
            "localfolder" => Code::Folder(i.existing_dir("localFolder")?.ok_or_else(|| {
                anyhow!("Input required: localFolder (codeLocation is 'localfolder')")
            })?),
            _ => {
                let path = i.existing_file("localZipFile")?.ok_or_else(|| {
                    anyhow!("Input required: localZipFile (codeLocation is 'localfile')")
                })?;
                check_zip(&path)?;
                Code::Zip(path)
            }
        };
        let config = if create_or_configure {
            let layer_refs = i
                .lines("layers")
                .iter()
                .map(|l| crate::layers::parse(l))
                .collect::<Result<Vec<_>>>()?;
            Some(Config {
                description: i.get("description"),
                handler: i.required("functionHandler")?,
                runtime: i.required("runtime")?,
                role: i.required("roleARN")?,
                memory: i.int("memorySize", 128..=10240)?.unwrap_or(128) as i32,
                timeout: i.int("timeout", 1..=900)?.unwrap_or(3) as i32,
                layer_refs,
                layers: Vec::new(),
                ephemeral_storage: i.int("ephemeralStorage", 512..=10240)?.map(|n| n as i32),
            })
        } else {
            None
        };
        let alias = i.get("aliasName");
        let publish = i.bool("publish");
        if alias.is_some() && !publish {
            bail!("Input 'aliasName' needs 'publish': an alias points at a published version.");
        }
        Ok(Params {
            create_or_configure,
            function: i.required("functionName")?,
            code,
            config,
            publish,
            alias,
            architecture: i
                .pick("architectures", &["x86_64", "arm64"])?
                .map(str::to_string),
            dead_letter: i.get("deadLetterARN"),
            kms_key: i.get("kmsKeyARN"),
            environment: i.key_values("environment")?,
            tags: i.key_values("tags")?,
            security_groups: i.list("securityGroups", ','),
            subnets: i.list("subnets", ','),
            tracing: match i
                .pick("tracingConfig", &["XRay", "Active", "PassThrough"])?
                .unwrap_or("XRay")
            {
                "XRay" => None,
                other => Some(other.to_string()),
            },
            output_variable: i.get("outputVariable"),
            version_variable: i.get("versionOutputVariable"),
        })
    }
}

/// A zip file of a size Lambda takes directly.
fn check_zip(path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let size = std::fs::metadata(path)?.len();
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut magic)?;
    if n < 4 || !(magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
        bail!(
            "Input 'localZipFile': {} is not a zip file.",
            path.display()
        );
    }
    if size > DIRECT_UPLOAD_LIMIT {
        bail!(
            "Input 'localZipFile': {} is {:.1} MiB, over Lambda's 50 MiB limit for direct uploads. Upload it to S3 and set codeLocation to 's3object'.",
            path.display(),
            size as f64 / 1048576.0
        );
    }
    Ok(())
}
