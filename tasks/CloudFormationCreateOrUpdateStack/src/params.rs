//! Every input, read and checked before any AWS call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use aws_sdk_cloudformation::types::{
    Capability, OnFailure, RollbackConfiguration, RollbackTrigger, Tag,
};
use vsts_cfn::outputs::OutputOptions;
use vsts_cfn::parameters::{self, Parameter};
use vsts_task::Task;

/// CloudFormation's limit for a template sent in the request itself.
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

#[derive(Debug, Clone)]
pub enum Template {
    /// A local file; uploaded to `bucket` first when one is given.
    File {
        path: PathBuf,
        body: String,
        bucket: Option<String>,
    },
    Url(String),
    S3 {
        bucket: String,
        key: String,
    },
    UsePrevious,
}

impl Template {
    pub fn describe(&self) -> String {
        match self {
            Template::File { path, bucket, .. } => match bucket {
                Some(b) => format!("{} (uploaded to bucket {b})", path.display()),
                None => path.display().to_string(),
            },
            Template::Url(u) => u.clone(),
            Template::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            Template::UsePrevious => "the stack's current template".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChangeSetOptions {
    pub name: String,
    pub description: Option<String>,
    pub include_nested: bool,
    pub auto_execute: bool,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub stack_name: String,
    pub template: Template,
    pub parameters: Vec<Parameter>,
    /// Where the parameters came from, for the log.
    pub parameters_source: Option<String>,
    pub overridden: Vec<String>,
    pub use_previous_values: bool,
    pub change_set: Option<ChangeSetOptions>,
    pub capabilities: Vec<Capability>,
    pub role_arn: Option<String>,
    pub resource_types: Vec<String>,
    pub notification_arns: Vec<String>,
    pub tags: Vec<Tag>,
    pub rollback: Option<RollbackConfiguration>,
    pub on_failure: OnFailure,
    pub warn_when_no_work: bool,
    pub outputs: OutputOptions,
    pub timeout: Duration,
    pub recreate_rolled_back: bool,
    pub termination_protection: bool,
}

/// Stack names: a letter, then letters, digits and hyphens, up to 128; an
/// existing stack may also be named by its ARN.
pub fn check_stack_name(name: &str) -> Result<()> {
    let ok = name.starts_with("arn:")
        || (name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !ok {
        bail!(
            "Input 'stackName': '{name}' is not a stack name (a letter, then letters, digits and hyphens, at most 128 characters)"
        );
    }
    Ok(())
}

/// Change set names follow the same rule as stack names.
fn check_change_set_name(name: &str) -> Result<()> {
    let ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        bail!(
            "Input 'changeSetName': '{name}' is not a change set name (a letter, then letters, digits and hyphens, at most 128 characters)"
        );
    }
    Ok(())
}

/// A filePath input the agent fills with the working folder when it is
/// left empty: a folder means "not given".
/// A file input; the folder the agent fills in for an empty one is "not set".
fn file_input(task: &Task, name: &str) -> Option<PathBuf> {
    task.inputs().path(name)
}

/// UTF-8 text without control characters (a YAML parser would stop at a
/// NUL and deploy what came before it).
fn read_text(path: &Path, input: &str) -> Result<String> {
    vsts_task::text::read_text_file(path, input).map_err(anyhow::Error::msg)
}

fn template(task: &Task) -> Result<Template> {
    let inputs = task.inputs();
    let source = inputs
        .pick("templateSource", &["file", "url", "s3", "usePrevious"])?
        .unwrap_or("file");
    Ok(match source {
        "file" => {
            let Some(path) = file_input(task, "templateFile") else {
                bail!("Input 'templateFile' is required when templateSource is 'file'");
            };
            let body = read_text(&path, "templateFile")?;
            let bucket = inputs.get("s3BucketName");
            if bucket.is_none() && body.len() > TEMPLATE_BODY_LIMIT {
                bail!(
                    "Input 'templateFile': '{}' is {} bytes, over CloudFormation's limit of {TEMPLATE_BODY_LIMIT} bytes \
                     for a template sent directly. Set 's3BucketName': the task uploads the template there first.",
                    path.display(),
                    body.len()
                );
            }
            Template::File { path, body, bucket }
        }
        "url" => {
            let url = inputs.get("templateUrl").ok_or_else(|| {
                anyhow::anyhow!("Input 'templateUrl' is required when templateSource is 'url'")
            })?;
            if !url.starts_with("https://") && !url.starts_with("http://") {
                bail!("Input 'templateUrl': '{url}' is not a URL");
            }
            Template::Url(url)
        }
        "s3" => {
            let (Some(bucket), Some(key)) = (inputs.get("s3BucketName"), inputs.get("s3ObjectKey"))
            else {
                bail!(
                    "Inputs 's3BucketName' and 's3ObjectKey' are both required when templateSource is 's3'"
                );
            };
            Template::S3 { bucket, key }
        }
        _ => Template::UsePrevious,
    })
}

fn parameters(task: &Task) -> Result<(Vec<Parameter>, Option<String>)> {
    let inputs = task.inputs();
    let source = inputs
        .pick("templateParametersSource", &["file", "inline"])?
        .unwrap_or("file");
    if source == "inline" {
        let text = inputs.required("templateParameters")?;
        let params = parameters::parse(&text, "Input 'templateParameters'")?;
        return Ok((params, Some("inline".into())));
    }
    let Some(path) = file_input(task, "templateParametersFile") else {
        return Ok((Vec::new(), None));
    };
    let text = read_text(&path, "templateParametersFile")?;
    let what = format!("templateParametersFile '{}'", path.display());
    let params = parameters::parse(&text, &what)?;
    Ok((params, Some(format!("file {}", path.display()))))
}

fn rollback(task: &Task) -> Result<Option<RollbackConfiguration>> {
    let inputs = task.inputs();
    if !inputs.bool("monitorRollbackTriggers") {
        return Ok(None);
    }
    let minutes = inputs.int("monitoringTimeInMinutes", 0..=180)?.unwrap_or(0);
    let arns = inputs.lines("rollbackTriggerARNs");
    if arns.len() > 5 {
        bail!(
            "Input 'rollbackTriggerARNs': at most 5 rollback triggers are allowed (got {})",
            arns.len()
        );
    }
    let triggers = arns
        .iter()
        .map(|arn| {
            RollbackTrigger::builder()
                .arn(arn)
                .r#type("AWS::CloudWatch::Alarm")
                .build()
        })
        .collect::<Vec<_>>();
    Ok(Some(
        RollbackConfiguration::builder()
            .monitoring_time_in_minutes(minutes as i32)
            .set_rollback_triggers(Some(triggers))
            .build(),
    ))
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let stack_name = inputs.required("stackName")?;
        check_stack_name(&stack_name)?;
        let template = template(task)?;
        let (mut parameters, parameters_source) = parameters(task)?;
        let overrides = inputs.key_values("parameterOverrides")?;
        parameters::apply_overrides(&mut parameters, &overrides);
        let change_set = if inputs.bool("useChangeSet") {
            let name = match inputs.get("changeSetName") {
                Some(n) => n,
                None => format!("{stack_name}-{}", unix_time()),
            };
            check_change_set_name(&name)?;
            Some(ChangeSetOptions {
                name,
                description: inputs.get("description"),
                include_nested: inputs.bool("includeNestedStacks"),
                auto_execute: inputs.bool_or("autoExecuteChangeSet", true),
            })
        } else {
            None
        };
        let mut capabilities = Vec::new();
        if inputs.bool_or("capabilityIAM", true) {
            capabilities.push(Capability::CapabilityIam);
        }
        if inputs.bool_or("capabilityNamedIAM", true) {
            capabilities.push(Capability::CapabilityNamedIam);
        }
        if inputs.bool("capabilityAutoExpand") {
            capabilities.push(Capability::CapabilityAutoExpand);
        }
        let tags = inputs
            .key_values("tags")?
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Vec<_>>();
        let mut on_failure = match inputs
            .pick("onFailure", &["ROLLBACK", "DO_NOTHING", "DELETE"])?
            .unwrap_or("ROLLBACK")
        {
            "DO_NOTHING" => OnFailure::DoNothing,
            "DELETE" => OnFailure::Delete,
            _ => OnFailure::Rollback,
        };
        // The original declared disableRollback and never read it.
        if inputs.bool("disableRollback") {
            on_failure = OnFailure::DoNothing;
        }
        let role_arn = inputs.get("roleARN");
        if let Some(arn) = &role_arn
            && !arn.starts_with("arn:")
        {
            bail!(
                "Input 'roleARN': '{arn}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            );
        }
        Ok(Params {
            stack_name,
            template,
            parameters,
            parameters_source,
            overridden: overrides.into_iter().map(|(k, _)| k).collect(),
            use_previous_values: inputs.bool_or("usePreviousParameterValues", true),
            change_set,
            capabilities,
            role_arn,
            resource_types: inputs.lines("resourceTypes"),
            notification_arns: inputs.lines("notificationARNs"),
            tags,
            rollback: rollback(task)?,
            on_failure,
            warn_when_no_work: inputs.bool_or("warnWhenNoWorkNeeded", true),
            outputs: OutputOptions::from_task(task)?,
            timeout: vsts_cfn::timeout_input(task)?,
            recreate_rolled_back: inputs.bool("recreateRolledBackStack"),
            termination_protection: inputs.bool("enableTerminationProtection"),
        })
    }
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        for ok in [
            "web",
            "web-app-2",
            "arn:aws:cloudformation:eu-west-1:1:stack/web/x",
        ] {
            check_stack_name(ok).unwrap();
        }
        for bad in ["2web", "web_app", "web app", ""] {
            let e = check_stack_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("Input 'stackName'"), "{e}");
        }
    }
}
