//! SystemsManagerSetParameter: creates or overwrites a parameter. An existing
//! SecureString stays a SecureString; a SecureString value is registered as
//! a secret before anything is printed.

use anyhow::{Result, bail};
use aws_sdk_ssm::types::ParameterType;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::Task;
use vsts_task::limits::{Limit, line, lines};

#[derive(Debug)]
pub struct Params {
    pub name: String,
    pub kind: ParameterType,
    pub value: String,
    pub key_id: Option<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let name = inputs.required("parameterName")?;
        // The original's default is lower-case 'string': accept any case.
        let kind = match inputs
            .pick("parameterType", &["String", "StringList", "SecureString"])?
            .unwrap_or("String")
        {
            "StringList" => ParameterType::StringList,
            "SecureString" => ParameterType::SecureString,
            _ => ParameterType::String,
        };
        let raw = task.env.raw("INPUT_PARAMETERVALUE").unwrap_or("");
        if raw.trim().is_empty() {
            bail!("Input required: parameterValue");
        }
        if kind == ParameterType::SecureString {
            task.console.set_secret(raw);
        }
        Ok(Params {
            name,
            key_id: if kind == ParameterType::SecureString {
                inputs.get("encryptionKeyId")
            } else {
                None
            },
            kind,
            value: raw.to_string(),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("parameterName", 2048, "a parameter name or ARN"),
    lines(
        "parameterValue",
        8192,
        "8 KB for an advanced parameter's value, 4 KB for a standard one",
    ),
    line("encryptionKeyId", 2048, "a KMS key ID, alias or ARN"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

/// The version of the parameter when a create was refused because it
/// exists already with exactly the value and type it was given: an
/// earlier attempt of the same call, whose answer the network lost, wrote
/// it. `None` when it is anything else (someone else's parameter).
async fn already_written(
    client: &aws_sdk_ssm::Client,
    p: &Params,
    kind: &ParameterType,
    e: &aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::put_parameter::PutParameterError>,
) -> Option<i64> {
    let refused = e.as_service_error()?;
    if !refused.is_parameter_already_exists() {
        return None;
    }
    let now = client
        .get_parameter()
        .name(&p.name)
        .with_decryption(true)
        .send()
        .await
        .ok()?
        .parameter?;
    (now.value.as_deref() == Some(p.value.as_str()) && now.r#type.as_ref() == Some(kind))
        .then_some(now.version)
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let client = vsts_aws_common::client!(aws_sdk_ssm, task, setup);
    let existing = match client.get_parameter().name(&p.name).send().await {
        Ok(out) => out.parameter.and_then(|x| x.r#type),
        Err(e) => {
            if vsts_aws_common::is_not_found(&e) {
                None
            } else {
                bail!(
                    "Reading parameter '{}' failed: {}",
                    p.name,
                    sdk_error_text(&e)
                );
            }
        }
    };
    let mut kind = p.kind.clone();
    if existing == Some(ParameterType::SecureString) && kind != ParameterType::SecureString {
        console.set_secret(&p.value);
        console.warning(&format!(
            "Parameter '{}' is a SecureString: it stays one (parameterType {} ignored).",
            p.name,
            kind.as_str()
        ));
        kind = ParameterType::SecureString;
    }
    let written = client
        .put_parameter()
        .name(&p.name)
        .value(&p.value)
        .r#type(kind.clone())
        .overwrite(existing.is_some())
        .set_key_id(p.key_id.clone())
        .send()
        .await;
    let version = match written {
        Ok(out) => out.version,
        Err(e) => match already_written(&client, p, &kind, &e).await {
            Some(version) => version,
            None => bail!(
                "Writing parameter '{}' failed: {}",
                p.name,
                sdk_error_text(&e)
            ),
        },
    };
    console.info(&format!(
        "Parameter '{}' ({}) {}: version {}.",
        p.name,
        kind.as_str(),
        if existing.is_some() {
            "updated"
        } else {
            "created"
        },
        version
    ));
    Ok(())
}
