//! SecretsManagerGetSecret: reads a secret into a secret pipeline variable.
//!
//! Beyond the original:
//! - `jsonKeysAsVariables`: when the secret is a JSON object, every top-level
//!   key also becomes a secret variable `<variableName>.<key>` (string values
//!   as they are, other values as compact JSON);
//! - `multiLineSecret`: the agent refuses a secret variable with a newline
//!   (unless `System.UnsafeAllowMultilineSecret` is true). `fail` (default)
//!   stops with an error that explains the choices; `base64` stores the value
//!   base64-encoded; `escapeNewlines` stores `\n` for each line break;
//!   `keep` passes it through (set `System.UnsafeAllowMultilineSecret`). When
//!   that variable is true, `fail` behaves as `keep`.

use anyhow::{Result, anyhow, bail};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use base64::Engine;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::{Task, VariableOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiLine {
    Fail,
    Base64,
    EscapeNewlines,
    Keep,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub secret_id: String,
    pub variable_name: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
    pub json_keys: bool,
    pub multi_line: MultiLine,
}

impl Params {
    /// Every input error surfaces here, before the first AWS call.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let variable_name = inputs.required("variableName")?;
        check_variable_name("variableName", &variable_name)?;
        let multi_line = match inputs.pick(
            "multiLineSecret",
            &["fail", "base64", "escapeNewlines", "keep"],
        )? {
            None | Some("fail") => {
                let allowed = task
                    .variables()
                    .value("System.UnsafeAllowMultilineSecret")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                if allowed {
                    MultiLine::Keep
                } else {
                    MultiLine::Fail
                }
            }
            Some("base64") => MultiLine::Base64,
            Some("escapeNewlines") => MultiLine::EscapeNewlines,
            Some(_) => MultiLine::Keep,
        };
        Ok(Params {
            secret_id: inputs.required("secretIdOrName")?,
            variable_name,
            version_id: inputs.get("versionId"),
            version_stage: inputs.get("versionStage"),
            json_keys: inputs.bool("jsonKeysAsVariables"),
            multi_line,
        })
    }
}

/// Variable names the agent accepts: letters, digits, `.`, `_` and `-`.
fn check_variable_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "{what} '{name}' cannot be a pipeline variable name: use letters, digits, '.', '_' and '-' only"
        );
    }
    Ok(())
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("secretIdOrName", 2048, "a secret name or ARN"),
    line("variableName", ceiling::VARIABLE, "a variable name"),
    line("versionId", 64, "a secret version ID"),
    line("versionStage", 256, "a version stage label"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

pub async fn execute(task: &Task, setup: &AwsSetup, params: &Params) -> Result<()> {
    let console = &task.console;
    let client = vsts_aws_common::client!(aws_sdk_secretsmanager, task, setup);

    let mut req = client.get_secret_value().secret_id(&params.secret_id);
    match (&params.version_id, &params.version_stage) {
        (Some(id), stage) => {
            if stage.is_some() {
                console.info("Both versionId and versionStage are set: versionId wins.");
            }
            req = req.version_id(id);
        }
        (None, Some(stage)) => req = req.version_stage(stage),
        (None, None) => {}
    }
    let out = req.send().await.map_err(|e| {
        let region = &setup.region;
        match e.as_service_error() {
            Some(GetSecretValueError::ResourceNotFoundException(_)) => anyhow!(
                "Secret '{}' was not found in region {region} (or the requested version does not exist).",
                params.secret_id
            ),
            Some(err) if err.meta().code() == Some("AccessDeniedException") => anyhow!(
                "Access denied reading secret '{}': {}",
                params.secret_id,
                err.meta().message().unwrap_or("no details")
            ),
            _ => anyhow!("Reading secret '{}' failed: {}", params.secret_id, sdk_error_text(&e)),
        }
    })?;

    let value = match (out.secret_string(), out.secret_binary()) {
        (Some(s), _) => s.to_string(),
        (None, Some(b)) => match String::from_utf8(b.as_ref().to_vec()) {
            Ok(text) => text,
            Err(_) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(b.as_ref());
                console.set_secret(&encoded);
                console.warning(&format!(
                    "Secret '{}' is binary and not text: the variable holds it base64-encoded.",
                    params.secret_id
                ));
                encoded
            }
        },
        (None, None) => bail!("Secret '{}' has no value.", params.secret_id),
    };
    // Registered before anything else is printed.
    console.set_secret(&value);
    let version = out.version_id().unwrap_or("unknown").to_string();

    let mut variables = vec![(params.variable_name.clone(), value.clone())];
    if params.json_keys {
        match serde_json::from_str::<serde_json::Value>(&value) {
            Ok(serde_json::Value::Object(map)) => {
                for (key, v) in map {
                    let name = format!("{}.{key}", params.variable_name);
                    check_variable_name(
                        &format!("The JSON key '{key}' gives the variable name"),
                        &name,
                    )?;
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    console.set_secret(&text);
                    variables.push((name, text));
                }
            }
            _ => bail!(
                "jsonKeysAsVariables is set but secret '{}' is not a JSON object.",
                params.secret_id
            ),
        }
    }

    // Check every value before setting any variable: all or nothing.
    let mut prepared = Vec::with_capacity(variables.len());
    for (name, v) in variables {
        prepared.push((
            name.clone(),
            prepare_multi_line(console, params.multi_line, &name, v)?,
        ));
    }
    for (name, v) in &prepared {
        console.set_variable(
            name,
            v,
            VariableOptions {
                secret: true,
                ..Default::default()
            },
        );
    }
    let names: Vec<&str> = prepared.iter().map(|(n, _)| n.as_str()).collect();
    console.info(&format!(
        "Secret '{}' (version {version}) stored in secret variable{} {}.",
        params.secret_id,
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ));
    Ok(())
}

fn prepare_multi_line(
    console: &vsts_task::Console,
    mode: MultiLine,
    name: &str,
    value: String,
) -> Result<String> {
    if !value.contains(['\n', '\r']) {
        return Ok(value);
    }
    let converted = match mode {
        MultiLine::Keep => return Ok(value),
        MultiLine::Fail => bail!(
            "The value for variable '{name}' has several lines, and the agent refuses multi-line secret variables. \
             Set the input multiLineSecret to 'base64' (decode it where you use it), 'escapeNewlines' (line breaks become \\n), \
             or 'keep' together with the pipeline variable System.UnsafeAllowMultilineSecret=true."
        ),
        MultiLine::Base64 => base64::engine::general_purpose::STANDARD.encode(value.as_bytes()),
        MultiLine::EscapeNewlines => value.replace("\r\n", "\\n").replace(['\n', '\r'], "\\n"),
    };
    console.set_secret(&converted);
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn task(pairs: &[(&str, &str)]) -> Task {
        let (c, _) = Console::capture(false);
        Task::new(
            "T",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        )
    }

    #[test]
    fn inputs_are_checked_before_any_call() {
        let e = Params::from_task(&task(&[("INPUT_SECRETIDORNAME", "s")])).unwrap_err();
        assert_eq!(e.to_string(), "Input required: variableName");
        let e = Params::from_task(&task(&[
            ("INPUT_SECRETIDORNAME", "s"),
            ("INPUT_VARIABLENAME", "a b"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("variableName 'a b' cannot be a pipeline variable name")
        );
        let e = Params::from_task(&task(&[
            ("INPUT_SECRETIDORNAME", "s"),
            ("INPUT_VARIABLENAME", "v"),
            ("INPUT_MULTILINESECRET", "zip"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("must be one of: fail, base64, escapeNewlines, keep")
        );
    }

    #[test]
    fn unsafe_allow_multiline_turns_fail_into_keep() {
        let p = Params::from_task(&task(&[
            ("INPUT_SECRETIDORNAME", "s"),
            ("INPUT_VARIABLENAME", "v"),
            ("SYSTEM_UNSAFEALLOWMULTILINESECRET", "true"),
        ]))
        .unwrap();
        assert_eq!(p.multi_line, MultiLine::Keep);
    }
}
