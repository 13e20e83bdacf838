//! SystemsManagerGetParameter: one parameter, or a hierarchy by path, into
//! pipeline variables. SecureString values always become secret variables.
//! Variable names follow the original's transforms: `none` (the parameter
//! name, path included), `leaf` (its last segment), `substitute` (a regular
//! expression replacement), `custom` (single mode only).

use anyhow::{Result, anyhow, bail};
use aws_sdk_ssm::types::{Parameter, ParameterType};
use regex_lite::{Regex, RegexBuilder};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::{Task, VariableOptions};

#[derive(Debug)]
pub enum Mode {
    Single { name: String, version: Option<u64> },
    Hierarchy { path: String, recursive: bool },
}

#[derive(Debug)]
pub enum Transform {
    None,
    Leaf,
    Substitute {
        pattern: Regex,
        replacement: String,
        global: bool,
    },
    Custom(String),
}

#[derive(Debug)]
pub struct Params {
    pub mode: Mode,
    pub transform: Transform,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let single = inputs
            .pick("readMode", &["single", "hierarchy"])?
            .unwrap_or("single")
            == "single";
        let (mode, transform_input, allowed): (Mode, &str, &[&'static str]) = if single {
            let name = inputs
                .get("parameterName")
                .ok_or_else(|| anyhow!("Input required: parameterName (readMode is 'single')"))?;
            let version = match inputs.get("parameterVersion") {
                None => None,
                Some(v) => Some(v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    anyhow!(
                        "Input 'parameterVersion' must be a version number of 1 or more (got '{v}')"
                    )
                })?),
            };
            (
                Mode::Single { name, version },
                "singleNameTransform",
                &["none", "leaf", "substitute", "custom"],
            )
        } else {
            let mut path = inputs.get("parameterPath").ok_or_else(|| {
                anyhow!("Input required: parameterPath (readMode is 'hierarchy')")
            })?;
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            (
                Mode::Hierarchy {
                    path,
                    recursive: inputs.bool("recursive"),
                },
                "hierarchyNameTransform",
                &["none", "leaf", "substitute"],
            )
        };
        let transform = match inputs.pick(transform_input, allowed)?.unwrap_or("none") {
            "leaf" => Transform::Leaf,
            "custom" => Transform::Custom(inputs.get("customVariableName").ok_or_else(|| {
                anyhow!("Input required: customVariableName (singleNameTransform is 'custom')")
            })?),
            "substitute" => {
                let pattern = inputs.get("replacementPattern").ok_or_else(|| {
                    anyhow!(
                        "Input required: replacementPattern ({transform_input} is 'substitute')"
                    )
                })?;
                let regex = RegexBuilder::new(&pattern)
                    .case_insensitive(inputs.bool_or("caseInsensitiveMatch", true))
                    .build()
                    .map_err(|e| anyhow!("Input 'replacementPattern': '{pattern}' is not a valid regular expression: {e}"))?;
                Transform::Substitute {
                    pattern: regex,
                    replacement: js_replacement(&inputs.get("replacementText").unwrap_or_default()),
                    global: inputs.bool_or("globalMatch", true),
                }
            }
            _ => Transform::None,
        };
        Ok(Params { mode, transform })
    }
}

/// Replacement text as the original task (JavaScript) reads it, in the
/// `regex-lite` syntax: `$1` and `$<name>` are groups, `$&` is the whole
/// match, `$$` is a dollar; any other `$` is literal. (Without this, `$2_$1`
/// would name a group `2_`.)
pub fn js_replacement(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push_str("$$");
                i += 2;
            }
            Some('&') => {
                out.push_str("${0}");
                i += 2;
            }
            Some(c) if c.is_ascii_digit() => {
                let mut j = i + 1;
                while j < chars.len() && j < i + 3 && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let n: String = chars[i + 1..j].iter().collect();
                out.push_str(&format!("${{{n}}}"));
                i = j;
            }
            Some('<') => match chars[i + 2..].iter().position(|c| *c == '>') {
                Some(end) => {
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    out.push_str(&format!("${{{name}}}"));
                    i += 3 + end;
                }
                None => {
                    out.push_str("$$");
                    i += 1;
                }
            },
            _ => {
                out.push_str("$$");
                i += 1;
            }
        }
    }
    out
}

/// The variable name for a parameter name.
pub fn variable_name(transform: &Transform, parameter: &str) -> String {
    match transform {
        Transform::None => parameter.to_string(),
        Transform::Leaf => parameter
            .split('/')
            .rfind(|s| !s.is_empty())
            .unwrap_or(parameter)
            .to_string(),
        Transform::Substitute {
            pattern,
            replacement,
            global,
        } => {
            if *global {
                pattern
                    .replace_all(parameter, replacement.as_str())
                    .into_owned()
            } else {
                pattern
                    .replace(parameter, replacement.as_str())
                    .into_owned()
            }
        }
        Transform::Custom(name) => name.clone(),
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("parameterName", 2048, "a parameter name or ARN"),
    line("parameterVersion", ceiling::NUMBER, "a number"),
    line("parameterPath", 2048, "a parameter path"),
    line("customVariableName", ceiling::VARIABLE, "a variable name"),
    line("replacementPattern", 1024, "a regular expression"),
    line("replacementText", 1024, "a replacement text"),
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
    let parameters: Vec<Parameter> = match &p.mode {
        Mode::Single { name, version } => {
            let id = match version {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let out = client
                .get_parameter()
                .name(&id)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    if vsts_aws_common::is_not_found(&e) {
                        anyhow!("Parameter '{id}' was not found in region {}.", setup.region)
                    } else {
                        anyhow!("Reading parameter '{id}' failed: {}", sdk_error_text(&e))
                    }
                })?;
            out.parameter.into_iter().collect()
        }
        Mode::Hierarchy { path, recursive } => {
            console.info(&format!(
                "Reading parameters under {path}{}",
                if *recursive { " (recursive)" } else { "" }
            ));
            let mut all = Vec::new();
            let mut pages = client
                .get_parameters_by_path()
                .path(path)
                .recursive(*recursive)
                .with_decryption(true)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    anyhow!(
                        "Reading parameters under '{path}' failed: {}",
                        sdk_error_text(&e)
                    )
                })?;
                all.extend(page.parameters.unwrap_or_default());
            }
            if all.is_empty() {
                bail!(
                    "No parameters found under path '{path}' in region {}.",
                    setup.region
                );
            }
            all
        }
    };
    // Secrets first, then names checked, then variables: all or nothing.
    let mut out = Vec::new();
    for param in &parameters {
        let name = param.name().unwrap_or_default();
        let value = param.value().unwrap_or_default();
        let secret = param.r#type() == Some(&ParameterType::SecureString);
        if secret {
            console.set_secret(value);
        }
        let variable = variable_name(&p.transform, name);
        if variable.trim().is_empty() {
            bail!("The name transform turns parameter '{name}' into an empty variable name.");
        }
        out.push((name.to_string(), variable, value.to_string(), secret));
    }
    for (name, variable, value, secret) in &out {
        console.set_variable(
            variable,
            value,
            VariableOptions {
                secret: *secret,
                ..Default::default()
            },
        );
        console.info(&format!(
            "Parameter '{name}' stored in {}variable '{variable}'.",
            if *secret { "secret " } else { "" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms() {
        assert_eq!(
            variable_name(&Transform::None, "/app/db/host"),
            "/app/db/host"
        );
        assert_eq!(variable_name(&Transform::Leaf, "/app/db/host/"), "host");
        let sub = |p: &str, r: &str, global: bool, ci: bool| Transform::Substitute {
            pattern: RegexBuilder::new(p).case_insensitive(ci).build().unwrap(),
            replacement: js_replacement(r),
            global,
        };
        assert_eq!(
            variable_name(&sub("/", ".", true, true), "/app/db/host"),
            ".app.db.host"
        );
        assert_eq!(
            variable_name(&sub("/", ".", false, true), "/app/db/host"),
            ".app/db/host"
        );
        assert_eq!(
            variable_name(&sub("^/APP/", "", true, true), "/app/db"),
            "db"
        );
        assert_eq!(
            variable_name(&sub("^/APP/", "", true, false), "/app/db"),
            "/app/db"
        );
        assert_eq!(
            variable_name(&sub("^/(\\w+)/(\\w+)$", "$2_$1", true, true), "/app/db"),
            "db_app"
        );
        assert_eq!(
            variable_name(
                &sub("(?<top>\\w+)$", "[$<top>|$&|$$|$x]", true, true),
                "/app/db"
            ),
            "/app/[db|db|$|$x]"
        );
    }
}
