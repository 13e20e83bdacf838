//! SecretsManagerCreateOrUpdateSecret: puts a new value into a secret,
//! creating it when missing if `autoCreateSecret` is set. Description and
//! KMS key are updated first when given; the ARN and the new version id go
//! to output variables.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

/// Secrets Manager's limit on tags.
const MAX_TAGS: usize = 50;

#[derive(Clone)]
pub enum Value {
    Text(String),
    Binary(Vec<u8>),
}

pub struct Params {
    pub secret: String,
    pub description: Option<String>,
    pub value: Value,
    pub kms_key_id: Option<String>,
    pub auto_create: bool,
    pub tags: Vec<(String, String)>,
    pub arn_variable: Option<String>,
    pub version_variable: Option<String>,
}

impl Params {
    /// Every input error surfaces here, before the first AWS call. The value
    /// is registered as a secret as soon as it is read.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let secret = inputs.required("secretNameOrId")?;
        let source = inputs
            .pick("secretValueSource", &["inline", "file"])?
            .unwrap_or("inline");
        let inline = inputs.get("secretValue");
        // The agent fills an empty file input with the sources folder.
        let file = inputs.path("secretValueFile");
        if inline.is_some() && file.is_some() {
            bail!(
                "Inputs 'secretValue' and 'secretValueFile' are both set. Give the value inline or in a file, not both (secretValueSource is '{source}')."
            );
        }
        let value = match source {
            "inline" => {
                let raw = task.env.raw("INPUT_SECRETVALUE").unwrap_or("");
                if raw.trim().is_empty() {
                    bail!("Input required: secretValue (secretValueSource is 'inline')");
                }
                // The value as given: secrets may end with significant
                // whitespace; the agent already trimmed the step's input.
                Value::Text(raw.to_string())
            }
            _ => {
                let path = inputs.existing_file("secretValueFile")?.ok_or_else(|| {
                    anyhow!("Input required: secretValueFile (secretValueSource is 'file')")
                })?;
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                match inputs.pick("secretValueType", &["string", "binary"])?.unwrap_or("string") {
                    "binary" => Value::Binary(bytes),
                    _ => Value::Text(String::from_utf8(bytes).map_err(|_| {
                        anyhow!(
                            "Input 'secretValueFile': {} is not UTF-8 text; set secretValueType to 'binary' to store it as a binary secret.",
                            path.display()
                        )
                    })?),
                }
            }
        };
        if let Value::Text(t) = &value {
            task.console.set_secret(t);
        }
        let auto_create = inputs.bool("autoCreateSecret");
        let tags = inputs.key_values("tags")?;
        if tags.len() > MAX_TAGS {
            bail!(
                "Input 'tags': {} tags given; Secrets Manager allows at most {MAX_TAGS}.",
                tags.len()
            );
        }
        Ok(Params {
            secret,
            description: inputs.get("description"),
            value,
            kms_key_id: inputs.get("kmsKeyId"),
            auto_create,
            tags,
            arn_variable: inputs.get("arnOutputVariable"),
            version_variable: inputs.get("versionIdOutputVariable"),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("secretNameOrId", 2048, "a secret name or ARN"),
    line("description", 2048, "a secret description"),
    lines(
        "secretValue",
        65536,
        "Secrets Manager's 64 KB for a secret value",
    ),
    line("secretValueFile", ceiling::PATH, "a file path"),
    line("kmsKeyId", 2048, "a KMS key ID, alias or ARN"),
    lines("tags", ceiling::TEXT, "a list of tags"),
    line("arnOutputVariable", ceiling::VARIABLE, "a variable name"),
    line(
        "versionIdOutputVariable",
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

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let client = vsts_aws_common::client!(aws_sdk_secretsmanager, task, setup);

    let (arn, version, created) = {
        // Metadata first, as the original does.
        let mut exists = true;
        if p.description.is_some() || p.kms_key_id.is_some() {
            let r = client
                .update_secret()
                .secret_id(&p.secret)
                .set_description(p.description.clone())
                .set_kms_key_id(p.kms_key_id.clone())
                .send()
                .await;
            match r {
                Ok(_) => {}
                Err(e) if vsts_aws_common::is_not_found(&e) => exists = false,
                Err(e) => bail!(
                    "Updating the description/KMS key of secret '{}' failed: {}",
                    p.secret,
                    sdk_error_text(&e)
                ),
            }
        }
        let put = if exists {
            let req = client.put_secret_value().secret_id(&p.secret);
            let req = match &p.value {
                Value::Text(t) => req.secret_string(t),
                Value::Binary(b) => req.secret_binary(Blob::new(b.clone())),
            };
            match req.send().await {
                Ok(out) => Some((
                    out.arn().unwrap_or_default().to_string(),
                    out.version_id().unwrap_or_default().to_string(),
                )),
                Err(e) if vsts_aws_common::is_not_found(&e) => None,
                Err(e) => bail!(
                    "Putting a new value into secret '{}' failed: {}",
                    p.secret,
                    sdk_error_text(&e)
                ),
            }
        } else {
            None
        };
        match put {
            Some((arn, version)) => (arn, version, false),
            None if !p.auto_create => bail!(
                "Secret '{}' does not exist in region {}. Set autoCreateSecret to create it.",
                p.secret,
                setup.region
            ),
            None => {
                console.info(&format!(
                    "Secret '{}' does not exist: creating it.",
                    p.secret
                ));
                let tags: Vec<Tag> = p
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect();
                let req = client
                    .create_secret()
                    .name(&p.secret)
                    .set_description(p.description.clone())
                    .set_kms_key_id(p.kms_key_id.clone())
                    .set_tags((!tags.is_empty()).then_some(tags));
                let req = match &p.value {
                    Value::Text(t) => req.secret_string(t),
                    Value::Binary(b) => req.secret_binary(Blob::new(b.clone())),
                };
                let out = req.send().await.map_err(|e| {
                    anyhow!(
                        "Creating secret '{}' failed: {}",
                        p.secret,
                        sdk_error_text(&e)
                    )
                })?;
                (
                    out.arn().unwrap_or_default().to_string(),
                    out.version_id().unwrap_or_default().to_string(),
                    true,
                )
            }
        }
    };
    if !created && !p.tags.is_empty() {
        console.info(
            "The secret exists: tags apply only when it is created, so they were not changed.",
        );
    }
    for (input, name, value) in [
        ("arnOutputVariable", &p.arn_variable, &arn),
        ("versionIdOutputVariable", &p.version_variable, &version),
    ] {
        if let Some(name) = name {
            console.info(&format!("Setting variable {name} ({input})."));
            console.set_variable(name, value, VariableOptions::default());
        }
    }
    console.info(&format!(
        "Secret '{}' {}: version {version}, {arn}",
        p.secret,
        if created { "created" } else { "updated" }
    ));
    Ok(())
}
