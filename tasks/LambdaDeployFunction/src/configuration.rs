//! The function's configuration: creating the function, updating its
//! configuration, tagging it, and resolving a role name to its ARN.

use anyhow::{Result, anyhow};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, DeadLetterConfig, Environment, EphemeralStorage, FunctionCode, Runtime,
    TracingConfig, TracingMode, VpcConfig,
};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::{Console, Task};

use crate::code::Payload;
use crate::params::{Config, Params};
use crate::wait::wait;

/// A role name becomes its ARN through IAM.
pub(crate) async fn role_arn(setup: &AwsSetup, task: &Task, role: &str) -> Result<String> {
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

pub(crate) async fn create(
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

pub(crate) async fn configure(
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
pub(crate) async fn tag(console: &Console, lambda: &aws_sdk_lambda::Client, p: &Params, arn: &str) {
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
