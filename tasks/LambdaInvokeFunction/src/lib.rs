//! LambdaInvokeFunction: invokes a function, synchronously or not.
//!
//! Beyond the original: a function error (`FunctionError` in the response)
//! fails the task, with the error payload in the log, unless
//! `failOnFunctionError` is false (then it is a warning); `qualifier`
//! invokes a version or alias; `DryRun` checks permissions and parameters.

use anyhow::{Result, anyhow, bail};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

#[derive(Debug)]
pub struct Params {
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: Option<String>,
    pub invocation: InvocationType,
    pub output_variable: Option<String>,
    pub tail_log: bool,
    pub fail_on_function_error: bool,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let invocation = match inputs
            .pick("invocationType", &["RequestResponse", "Event", "DryRun"])?
            .unwrap_or("RequestResponse")
        {
            "Event" => InvocationType::Event,
            "DryRun" => InvocationType::DryRun,
            _ => InvocationType::RequestResponse,
        };
        Ok(Params {
            function: inputs.required("functionName")?,
            qualifier: inputs.get("qualifier"),
            payload: inputs.get("payload").map(|p| json_payload(&p)),
            invocation,
            output_variable: inputs.get("outputVariable"),
            tail_log: inputs.pick("logType", &["None", "Tail"])?.unwrap_or("None") == "Tail",
            fail_on_function_error: inputs.bool_or("failOnFunctionError", true),
        })
    }
}

/// The original's rule: a payload that looks like JSON (starts with `"`, `{`
/// or `[` and ends with `"`, `}` or `]`) is sent as is; anything else is
/// sent as a JSON string.
pub fn json_payload(raw: &str) -> String {
    let t = raw.trim();
    let looks_json = t.starts_with(['"', '{', '[']) && t.ends_with(['"', '}', ']']);
    if looks_json {
        t.to_string()
    } else {
        serde_json_string(t)
    }
}

fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line(
        "functionName",
        170,
        "a Lambda function name, partial ARN or ARN",
    ),
    line("qualifier", 128, "a Lambda version or alias"),
    lines(
        "payload",
        6 * 1024 * 1024,
        "Lambda's 6 MB for a synchronous payload",
    ),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let client = vsts_aws_common::client!(aws_sdk_lambda, task, setup);
    client
        .get_function_configuration()
        .function_name(&p.function)
        .set_qualifier(p.qualifier.clone())
        .send()
        .await
        .map_err(|e| {
            if vsts_aws_common::is_not_found(&e) {
                anyhow!(
                    "Function '{}' does not exist in region {}.",
                    p.function,
                    setup.region
                )
            } else {
                anyhow!(
                    "Reading the configuration of function '{}' failed: {}",
                    p.function,
                    sdk_error_text(&e)
                )
            }
        })?;
    console.info(&format!(
        "Invoking {} ({})",
        p.function,
        p.invocation.as_str()
    ));
    let out = client
        .invoke()
        .function_name(&p.function)
        .set_qualifier(p.qualifier.clone())
        .invocation_type(p.invocation.clone())
        .log_type(if p.tail_log {
            LogType::Tail
        } else {
            LogType::None
        })
        .set_payload(p.payload.as_ref().map(|s| Blob::new(s.as_bytes().to_vec())))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Invoking function '{}' failed: {}",
                p.function,
                sdk_error_text(&e)
            )
        })?;
    if let Some(log) = out.log_result() {
        let text = base64::engine::general_purpose::STANDARD
            .decode(log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| log.to_string());
        console.group("Function log (last 4 KB)");
        console.info(text.trim_end());
        console.end_group();
    }
    let payload = out
        .payload()
        .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
        .unwrap_or_default();
    if let Some(kind) = out.function_error() {
        let message = format!(
            "Function '{}' returned an error ({kind}): {payload}",
            p.function
        );
        if p.fail_on_function_error {
            bail!(message);
        }
        console.warning(&message);
    }
    console.info(&format!(
        "Status {}{}",
        out.status_code(),
        out.executed_version()
            .map(|v| format!(", version {v}"))
            .unwrap_or_default()
    ));
    if let Some(name) = &p.output_variable {
        if p.invocation == InvocationType::RequestResponse {
            console.set_variable(name, &payload, VariableOptions::default());
            console.info(&format!(
                "Response payload ({} bytes) stored in variable '{name}'.",
                payload.len()
            ));
        } else {
            console.info(&format!(
                "No payload to store in '{name}': {} invocations return none.",
                p.invocation.as_str()
            ));
        }
    }
    console.debug(&format!("Response payload: {payload}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_heuristic_matches_the_original() {
        assert_eq!(json_payload(r#" {"a":1} "#), r#"{"a":1}"#);
        assert_eq!(json_payload("[1,2]"), "[1,2]");
        assert_eq!(
            json_payload(r#""already a string""#),
            r#""already a string""#
        );
        assert_eq!(json_payload("hello"), r#""hello""#);
        assert_eq!(json_payload("say \"hi\"\nnow"), r#""say \"hi\"\nnow""#);
        assert_eq!(json_payload("{not closed"), r#""{not closed""#);
    }
}
