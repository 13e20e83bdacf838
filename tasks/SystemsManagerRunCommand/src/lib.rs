//! SystemsManagerRunCommand: sends a Systems Manager document to instances
//! (by id, by tags, or from a pipeline variable) as the AWS Toolkit task of
//! the same name does, and sets the command id in
//! `commandIdOutputVariable`.
//!
//! Beyond the original (its users' most asked feature): with
//! `waitForCompletion` the task follows the command to its end, printing
//! its progress and then each instance's status and output, and fails when
//! any instance failed, timed out or was cancelled. When the wait runs out
//! (`waitTimeoutSeconds`) or the step is cancelled, the command is
//! cancelled too: nothing keeps running unobserved.

mod wait;

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use aws_sdk_ssm::types::{
    CloudWatchOutputConfig, NotificationConfig, NotificationEvent, NotificationType, Target,
};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

pub use wait::{Finished, Invocation};

/// Which instances the command goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    Instances(Vec<String>),
    /// `(tag key, values)`: sent as `tag:<key>` targets.
    Tags(Vec<(String, Vec<String>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub document: String,
    pub parameters: HashMap<String, Vec<String>>,
    pub comment: Option<String>,
    pub service_role: Option<String>,
    pub targets: Targets,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub timeout: Option<i32>,
    pub notification: Option<(String, NotificationType, NotificationEvent)>,
    pub output_bucket: Option<String>,
    pub output_prefix: Option<String>,
    pub cloudwatch: Option<Option<String>>,
    pub output_variable: Option<String>,
    /// Seconds to wait for the command's end; `None`: do not wait.
    pub wait: Option<u64>,
}

/// SSM's own limits: 50 instance ids, 5 tag targets of 50 values each.
const MAX_INSTANCES: usize = 50;
const MAX_TAG_TARGETS: usize = 5;

impl Params {
    /// Every input error surfaces here, before anything is sent.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let document = inputs.required("documentName")?;
        let parameters = match inputs.get("documentParameters") {
            None => HashMap::new(),
            Some(text) => document_parameters(&text)?,
        };
        let targets = match inputs.pick(
            "instanceSelector",
            &["fromInstanceIds", "fromTags", "fromBuildVariable"],
        )? {
            None | Some("fromInstanceIds") => {
                let ids = inputs.lines("instanceIds");
                if ids.is_empty() {
                    bail!(
                        "Input required: instanceIds (one instance id per line, for example i-0123456789abcdef0)"
                    );
                }
                Targets::Instances(instance_ids("instanceIds", ids)?)
            }
            Some("fromTags") => Targets::Tags(tags(&inputs.lines("instanceTags"))?),
            Some(_) => {
                let name = inputs.required("instanceBuildVariable")?;
                let name = name.trim_start_matches("$(").trim_end_matches(')');
                let Some(value) = task.variables().value(name) else {
                    bail!(
                        "Failed to retrieve list of instance IDs from build variable {name}: the variable is not set \
                         (input 'instanceBuildVariable' names it; give the name alone, without $())."
                    );
                };
                let ids: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if ids.is_empty() {
                    bail!(
                        "Failed to retrieve list of instance IDs from build variable {name}: it is empty."
                    );
                }
                Targets::Instances(instance_ids(&format!("variable {name}"), ids)?)
            }
        };
        let rate = |name: &str| -> Result<Option<String>> {
            let Some(v) = inputs.get(name) else {
                return Ok(None);
            };
            let digits = v.strip_suffix('%').unwrap_or(&v);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || v.len() > 7 {
                bail!(
                    "Input '{name}' must be a number of instances (10) or a percentage (10%) (got '{v}')"
                );
            }
            Ok(Some(v))
        };
        let notification = match inputs.get("notificationArn") {
            None => None,
            Some(arn) => {
                let kind =
                    match inputs.pick("notificationType", &["Command", "Invocation", "none"])? {
                        Some("Invocation") => NotificationType::Invocation,
                        // The original's default is 'none', which SSM refuses
                        // with a topic: command-level notifications then.
                        _ => NotificationType::Command,
                    };
                let events = inputs
                    .pick(
                        "notificationEvents",
                        &[
                            "All",
                            "InProgress",
                            "Success",
                            "TimedOut",
                            "Cancelled",
                            "Failed",
                        ],
                    )?
                    .unwrap_or("All");
                Some((arn, kind, NotificationEvent::from(events)))
            }
        };
        let cloudwatch = inputs
            .bool("cloudWatchOutputEnabled")
            .then(|| inputs.get("cloudWatchLogGroupName"));
        let wait = if inputs.bool("waitForCompletion") {
            Some(
                inputs
                    .int("waitTimeoutSeconds", 1..=172_800)?
                    .unwrap_or(3600) as u64,
            )
        } else {
            None
        };
        Ok(Params {
            document,
            parameters,
            comment: inputs.get("comment"),
            service_role: inputs.get("serviceRoleARN"),
            targets,
            max_concurrency: rate("maxConcurrency")?,
            max_errors: rate("maxErrors")?,
            timeout: inputs.int("timeout", 30..=2_592_000)?.map(|t| t as i32),
            notification,
            output_bucket: inputs.get("outputS3BucketName"),
            output_prefix: inputs.get("outputS3KeyPrefix"),
            cloudwatch,
            output_variable: inputs.get("commandIdOutputVariable"),
            wait,
        })
    }
}

fn instance_ids(source: &str, ids: Vec<String>) -> Result<Vec<String>> {
    if ids.len() > MAX_INSTANCES {
        bail!(
            "{}: {} instance ids; Systems Manager takes at most {MAX_INSTANCES} per command. Target more by tags.",
            if source.starts_with("variable") {
                source.to_string()
            } else {
                format!("Input '{source}'")
            },
            ids.len()
        );
    }
    Ok(ids)
}

/// `key=value1,value2` lines.
fn tags(lines: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    if lines.is_empty() {
        bail!("Input required: instanceTags (one Key=Value per line; several values as Key=v1,v2)");
    }
    if lines.len() > MAX_TAG_TARGETS {
        bail!(
            "Input 'instanceTags': {} tags; Systems Manager takes at most {MAX_TAG_TARGETS} per command.",
            lines.len()
        );
    }
    lines
        .iter()
        .map(|line| {
            let (key, values) = line
                .split_once('=')
                .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
                .with_context(|| {
                    format!("Input 'instanceTags': expected Key=Value (or Key=v1,v2), got '{line}'")
                })?;
            let values = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            Ok((key.trim().to_string(), values))
        })
        .collect()
}

/// The document's parameters: a JSON object whose values are lists of
/// strings (`{"commands": ["echo hello"]}`), as SendCommand takes them. A
/// single string, number or boolean is taken as a list of one.
fn document_parameters(text: &str) -> Result<HashMap<String, Vec<String>>> {
    const EXAMPLE: &str = r#"{ "commands": ["echo hello", "uptime"] }"#;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "Input 'documentParameters' is not valid JSON ({e}); expected an object like {EXAMPLE}"
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        bail!("Input 'documentParameters' must be a JSON object like {EXAMPLE}");
    };
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    map.into_iter()
        .map(|(name, v)| {
            let list = match &v {
                serde_json::Value::Array(items) => items.iter().map(scalar).collect(),
                other => scalar(other).map(|s| vec![s]),
            };
            list.map(|l| (name.clone(), l)).with_context(|| {
                format!(
                    "Input 'documentParameters': parameter '{name}' must be a string or a list of strings, like {EXAMPLE}"
                )
            })
        })
        .collect()
}

pub const INPUT_LIMITS: &[Limit] = &[
    line("documentName", ceiling::ARN, "an SSM document name or ARN"),
    lines(
        "documentParameters",
        ceiling::TEXT,
        "the document's parameters as JSON",
    ),
    line("comment", 100, "a comment of up to 100 characters"),
    line("serviceRoleARN", ceiling::ARN, "an IAM role ARN"),
    lines("instanceIds", ceiling::TEXT, "instance ids, one per line"),
    lines("instanceTags", ceiling::TEXT, "Key=Value lines"),
    line(
        "instanceBuildVariable",
        ceiling::VARIABLE,
        "a pipeline variable name",
    ),
    line("maxConcurrency", 7, "a number or a percentage"),
    line("maxErrors", 7, "a number or a percentage"),
    line("timeout", ceiling::NUMBER, "seconds, 30 to 2592000"),
    line("notificationArn", ceiling::ARN, "an SNS topic ARN"),
    line("outputS3BucketName", 63, "an S3 bucket name"),
    line("outputS3KeyPrefix", 500, "an S3 key prefix"),
    line(
        "cloudWatchLogGroupName",
        512,
        "a CloudWatch Logs group name",
    ),
    line(
        "commandIdOutputVariable",
        ceiling::VARIABLE,
        "a pipeline variable name",
    ),
    line(
        "waitTimeoutSeconds",
        ceiling::NUMBER,
        "seconds, 1 to 172800",
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
    let client = vsts_aws_common::client!(aws_sdk_ssm, task, setup);
    let mut req = client
        .send_command()
        .document_name(&p.document)
        .set_parameters((!p.parameters.is_empty()).then(|| p.parameters.clone()))
        .set_comment(p.comment.clone())
        .set_service_role_arn(p.service_role.clone())
        .set_max_concurrency(p.max_concurrency.clone())
        .set_max_errors(p.max_errors.clone())
        .set_timeout_seconds(p.timeout)
        .set_output_s3_bucket_name(p.output_bucket.clone())
        .set_output_s3_key_prefix(p.output_prefix.clone());
    let described = match &p.targets {
        Targets::Instances(ids) => {
            req = req.set_instance_ids(Some(ids.clone()));
            format!("instance(s) {}", ids.join(", "))
        }
        Targets::Tags(tags) => {
            for (key, values) in tags {
                req = req.targets(
                    Target::builder()
                        .key(format!("tag:{key}"))
                        .set_values(Some(values.clone()))
                        .build(),
                );
            }
            let shown: Vec<String> = tags
                .iter()
                .map(|(k, v)| format!("{k}={}", v.join(",")))
                .collect();
            format!("instances tagged {}", shown.join(" and "))
        }
    };
    if let Some((arn, kind, events)) = &p.notification {
        req = req.notification_config(
            NotificationConfig::builder()
                .notification_arn(arn)
                .notification_type(kind.clone())
                .notification_events(events.clone())
                .build(),
        );
    }
    if let Some(group) = &p.cloudwatch {
        req = req.cloud_watch_output_config(
            CloudWatchOutputConfig::builder()
                .cloud_watch_output_enabled(true)
                .set_cloud_watch_log_group_name(group.clone())
                .build(),
        );
    }
    console.info(&format!("Sending document {} to {described}.", p.document));
    let out = req
        .send()
        .await
        .sdk_context(|| format!("Sending the command (document {})", p.document))?;
    let command_id = out
        .command
        .and_then(|c| c.command_id)
        .context("Systems Manager accepted the command but returned no command id")?;
    if let Some(name) = &p.output_variable {
        console.info(&format!(
            "Storing unique command ID for the invocation into variable {name}"
        ));
        console.set_variable(name, &command_id, VariableOptions::default());
    }
    console.info(&format!(
        "Successfully invoked command {}, unique command ID returned by the service was {command_id}.",
        p.document
    ));
    let Some(limit) = p.wait else {
        return Ok(());
    };
    let finished = wait::wait(
        console,
        &client,
        &command_id,
        std::time::Duration::from_secs(limit),
    )
    .await?;
    wait::report(task, &p.document, &command_id, &finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "SystemsManagerRunCommand",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    const DOC: (&str, &str) = ("INPUT_DOCUMENTNAME", "AWS-RunShellScript");

    fn err(pairs: &[(&str, &str)]) -> String {
        params(pairs).unwrap_err().to_string()
    }

    #[test]
    fn targets_by_ids_tags_and_variable() {
        let p = params(&[DOC, ("INPUT_INSTANCEIDS", "i-1\n\n i-2 \n")]).unwrap();
        assert_eq!(
            p.targets,
            Targets::Instances(vec!["i-1".into(), "i-2".into()])
        );
        assert_eq!(p.wait, None);
        let sel = |v| ("INPUT_INSTANCESELECTOR", v);
        let p = params(&[
            DOC,
            sel("fromTags"),
            ("INPUT_INSTANCETAGS", "Role = web\nStage=blue, green"),
        ])
        .unwrap();
        assert_eq!(
            p.targets,
            Targets::Tags(vec![
                ("Role".into(), vec!["web".into()]),
                ("Stage".into(), vec!["blue".into(), "green".into()])
            ])
        );
        assert!(
            err(&[DOC, sel("fromTags"), ("INPUT_INSTANCETAGS", "Role")])
                .starts_with("Input 'instanceTags': expected Key=Value")
        );
        assert!(err(&[DOC, sel("fromTags")]).starts_with("Input required: instanceTags"));
        let var = [
            DOC,
            sel("fromBuildVariable"),
            ("INPUT_INSTANCEBUILDVARIABLE", "$(Fleet.Ids)"),
        ];
        assert!(
            err(&var).starts_with(
                "Failed to retrieve list of instance IDs from build variable Fleet.Ids"
            )
        );
        let mut with = var.to_vec();
        with.push(("FLEET_IDS", "i-a, i-b,"));
        assert_eq!(
            params(&with).unwrap().targets,
            Targets::Instances(vec!["i-a".into(), "i-b".into()])
        );
        assert!(err(&[DOC]).starts_with("Input required: instanceIds"));
        assert!(err(&[DOC, sel("byMagic")]).contains("instanceSelector"));
        let many: String = (0..51).map(|i| format!("i-{i}\n")).collect();
        assert!(err(&[DOC, ("INPUT_INSTANCEIDS", &many)]).contains("at most 50"));
    }

    #[test]
    fn parameters_rates_notifications_and_wait() {
        let ids = ("INPUT_INSTANCEIDS", "i-1");
        let p = params(&[
            DOC,
            ids,
            (
                "INPUT_DOCUMENTPARAMETERS",
                r#"{"commands": ["echo hi", "uptime"], "executionTimeout": 3600, "workingDirectory": "/tmp"}"#,
            ),
            ("INPUT_MAXCONCURRENCY", "10%"),
            ("INPUT_MAXERRORS", "0"),
            ("INPUT_NOTIFICATIONARN", "arn:aws:sns:us-east-1:1:t"),
            ("INPUT_NOTIFICATIONTYPE", "none"),
            ("INPUT_WAITFORCOMPLETION", "true"),
        ])
        .unwrap();
        assert_eq!(p.parameters["commands"], ["echo hi", "uptime"]);
        assert_eq!(p.parameters["executionTimeout"], ["3600"]);
        assert_eq!(p.parameters["workingDirectory"], ["/tmp"]);
        assert_eq!(p.max_concurrency.as_deref(), Some("10%"));
        assert_eq!(
            p.notification,
            Some((
                "arn:aws:sns:us-east-1:1:t".into(),
                NotificationType::Command,
                NotificationEvent::All
            ))
        );
        assert_eq!(p.wait, Some(3600));
        assert!(
            err(&[DOC, ids, ("INPUT_DOCUMENTPARAMETERS", "commands: ls")])
                .starts_with("Input 'documentParameters' is not valid JSON")
        );
        assert!(
            err(&[
                DOC,
                ids,
                ("INPUT_DOCUMENTPARAMETERS", r#"{"commands": [{"a": 1}]}"#)
            ])
            .contains("parameter 'commands'")
        );
        assert!(err(&[DOC, ids, ("INPUT_MAXERRORS", "ten")]).starts_with("Input 'maxErrors'"));
        assert!(err(&[DOC, ids, ("INPUT_TIMEOUT", "10")]).starts_with("Input 'timeout'"));
        assert!(
            err(&[
                DOC,
                ids,
                ("INPUT_WAITFORCOMPLETION", "true"),
                ("INPUT_WAITTIMEOUTSECONDS", "0")
            ])
            .starts_with("Input 'waitTimeoutSeconds'")
        );
    }
}
