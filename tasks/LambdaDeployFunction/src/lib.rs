//! LambdaDeployFunction: updates a function's code (`codeonly`), or its
//! configuration and code, creating it when missing
//! (`codeandconfiguration`).
//!
//! Beyond the original: `architectures` (x86_64/arm64), `ephemeralStorage`,
//! a folder as code (zipped deterministically: the same files give the same
//! CodeSha256, so an unchanged deploy is recognised and reported), layers
//! by name and version or by name alone (the latest version), resolved
//! before anything changes,
//! `aliasName` pointed at the published version, `versionOutputVariable`.
//! Every change waits until Lambda reports the function Active and its last
//! update Successful; a failed update fails the task with Lambda's reason.
//! Empty VPC or environment settings are never sent, so they cannot wipe
//! what the function already has.
//!
//! `execute` reads the function and runs the steps: `configuration`
//! (create, update configuration, tags, role lookup), `code` (the payload
//! and the code update), `alias`; `wait` follows every change until Lambda
//! has applied it.

mod alias;
mod code;
mod configuration;
pub mod layers;
mod params;
mod wait;

use anyhow::{Result, anyhow, bail};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

pub use code::code_sha256;
pub use params::{Code, Config, DIRECT_UPLOAD_LIMIT, Params};
pub use wait::wait;

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
    lines(
        "layers",
        ceiling::TEXT,
        "a list of layer version ARNs or layer names",
    ),
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

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let lambda = vsts_aws_common::client!(aws_sdk_lambda, task, setup);
    let code = code::payload(&p.code)?;
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
        Some(c) => Some(configuration::role_arn(setup, task, &c.role).await?),
        None => None,
    };
    let config = match &p.config {
        Some(c) => Some(Config {
            layers: layers::resolve(console, &lambda, &c.layer_refs).await?,
            ..c.clone()
        }),
        None => None,
    };
    let arn = match (&existing, &config) {
        (None, None) => bail!(
            "Function '{}' does not exist in region {}, and deploymentMode 'codeonly' cannot create it. Use 'codeandconfiguration' to create it.",
            p.function,
            setup.region
        ),
        (None, Some(config)) => {
            configuration::create(console, &lambda, p, config, role.unwrap_or_default(), code)
                .await?
        }
        (Some(current), config) => {
            if let Some(config) = config {
                configuration::configure(console, &lambda, p, config, role.unwrap_or_default())
                    .await?;
                wait(console, &lambda, &p.function).await?;
                configuration::tag(
                    console,
                    &lambda,
                    p,
                    current.function_arn().unwrap_or_default(),
                )
                .await;
            }
            code::update_code(console, &lambda, p, current.code_sha256(), code).await?
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
        alias::point_alias(console, &lambda, &p.function, alias, version).await?;
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
