//! `cargo xtask run <TaskName> --input k=v --variable k=v --secret k=v
//! --connection k=v --connection-data k=v`: runs a task as the agent would,
//! through the launcher with `node`, and shows its output with the `##vso`
//! commands decoded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::layout::{self, TaskSource};

/// The connection GUID used for `--connection` values.
pub const LOCAL_CONNECTION: &str = "00000000-0000-4000-8000-000000000001";

#[derive(Debug, Default)]
pub struct RunArgs {
    pub task: String,
    pub inputs: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub connection: Vec<(String, String)>,
    pub connection_data: Vec<(String, String)>,
}

impl RunArgs {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut it = args.iter();
        let mut out = RunArgs {
            task: it
                .next()
                .context("usage: cargo xtask run <TaskName> [--input k=v]...")?
                .clone(),
            ..Default::default()
        };
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} needs name=value"))?;
            let (k, v) = value
                .split_once('=')
                .with_context(|| format!("{flag} {value}: expected name=value"))?;
            let pair = (k.to_string(), v.to_string());
            match flag.as_str() {
                "--input" | "-i" => out.inputs.push(pair),
                "--variable" | "-v" => out.variables.push(pair),
                "--secret" => out.secrets.push(pair),
                "--connection" | "-c" => out.connection.push(pair),
                "--connection-data" => out.connection_data.push(pair),
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(out)
    }
}

/// The environment the agent would build for this step: task.json defaults,
/// then the given inputs (trimmed, as the agent does), variables, secrets and
/// the service connection.
pub fn agent_env(task_json: &Value, args: &RunArgs) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = Vec::new();
    let inputs = task_json["inputs"].as_array().cloned().unwrap_or_default();
    let mut connection_input = None;
    for input in &inputs {
        let name = input["name"].as_str().unwrap_or("");
        let default = match &input["defaultValue"] {
            Value::String(s) => s.trim().to_string(),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        if input["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("connectedService:"))
        {
            connection_input.get_or_insert(name.to_string());
        }
        env.push((format!("INPUT_{}", vsts_task::env_name(name)), default));
    }
    let known = |n: &str| {
        inputs.iter().any(|i| {
            i["name"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(n))
        })
    };
    for (k, v) in &args.inputs {
        if !known(k) {
            bail!("task {} has no input '{k}'", args.task);
        }
        set(
            &mut env,
            &format!("INPUT_{}", vsts_task::env_name(k)),
            v.trim(),
        );
    }
    let mut public = Vec::new();
    for (k, v) in &args.variables {
        public.push(Value::String(k.clone()));
        set(&mut env, &vsts_task::env_name(k), v);
    }
    set(
        &mut env,
        "VSTS_PUBLIC_VARIABLES",
        &Value::Array(public).to_string(),
    );
    for (k, v) in &args.secrets {
        set(&mut env, &format!("SECRET_{}", vsts_task::env_name(k)), v);
    }
    if !args.connection.is_empty() || !args.connection_data.is_empty() {
        let input = connection_input.context("this task has no service connection input")?;
        let id = LOCAL_CONNECTION;
        set(
            &mut env,
            &format!("INPUT_{}", vsts_task::env_name(&input)),
            id,
        );
        set(
            &mut env,
            &format!("ENDPOINT_URL_{id}"),
            "https://aws.amazon.com/",
        );
        set(
            &mut env,
            &format!("ENDPOINT_AUTH_SCHEME_{id}"),
            "UsernamePassword",
        );
        let params: serde_json::Map<String, Value> = args
            .connection
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        set(
            &mut env,
            &format!("ENDPOINT_AUTH_{id}"),
            &serde_json::json!({"parameters": params, "scheme": "UsernamePassword"}).to_string(),
        );
        for (k, v) in &args.connection {
            set(
                &mut env,
                &format!("ENDPOINT_AUTH_PARAMETER_{id}_{}", vsts_task::env_name(k)),
                v,
            );
        }
        for (k, v) in &args.connection_data {
            set(
                &mut env,
                &format!("ENDPOINT_DATA_{id}_{}", vsts_task::env_name(k)),
                v,
            );
        }
    }
    set(&mut env, "TF_BUILD", "True");
    Ok(env)
}

fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(key, _)| key != k);
    env.push((k.to_string(), v.to_string()));
}

/// Runs the staged task folder through `node run.js`; prints its output
/// decoded. Returns the exit code.
pub fn run(task_dir: &Path, task: &TaskSource, args: &RunArgs) -> Result<i32> {
    let json = layout::read_json(&task_dir.join("task.json"))?;
    let env = agent_env(&json, args)?;
    let mut child = Command::new("node")
        .arg(task_dir.join("run.js"))
        .envs(env)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("starting node (is Node.js installed?)")?;
    let stdout = child.stdout.take().unwrap();
    let mut secrets: Vec<String> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{}", decode(&line, &mut secrets));
    }
    let status = child.wait()?;
    println!("-- {} exited with {status}", task.name);
    Ok(status.code().unwrap_or(1))
}

/// One output line, readable: commands decoded, registered secrets masked
/// (as the agent's log would show them).
pub fn decode(line: &str, secrets: &mut Vec<String>) -> String {
    let mask = |s: &str, secrets: &[String]| {
        let mut s = s.to_string();
        for secret in secrets {
            s = s.replace(secret.as_str(), "***");
        }
        s
    };
    match vsts_task::command::parse(line) {
        Some(c) if c.is("task.setsecret") => {
            secrets.push(c.message.clone());
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            "[secret registered]".to_string()
        }
        Some(c) => {
            let props: Vec<String> = c
                .properties
                .iter()
                .map(|(k, v)| format!("{k}={}", mask(v, secrets)))
                .collect();
            format!(
                "[{}{}{}] {}",
                c.name,
                if props.is_empty() { "" } else { " " },
                props.join(" "),
                mask(&c.message, secrets)
            )
        }
        None => mask(line, secrets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_has_defaults_then_trimmed_inputs_and_a_connection() {
        let task = json!({"inputs": [
            {"name": "awsCredentials", "type": "connectedService:AWSPipelineTasks", "defaultValue": ""},
            {"name": "bucketName", "type": "string", "defaultValue": ""},
            {"name": "flattenFolders", "type": "boolean", "defaultValue": false},
            {"name": "globExpressions", "type": "multiLine", "defaultValue": "**\n"}
        ]});
        let args = RunArgs::parse(&[
            "S3Upload".into(),
            "--input".into(),
            "bucketName=  b  ".into(),
            "--connection".into(),
            "username=AK".into(),
            "--variable".into(),
            "AWS.Region=eu-west-1".into(),
        ])
        .unwrap();
        let env = agent_env(&task, &args).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("INPUT_BUCKETNAME"), Some("b"));
        assert_eq!(get("INPUT_FLATTENFOLDERS"), Some("false"));
        assert_eq!(get("INPUT_GLOBEXPRESSIONS"), Some("**"));
        assert_eq!(get("INPUT_AWSCREDENTIALS"), Some(LOCAL_CONNECTION));
        assert_eq!(
            get(&format!(
                "ENDPOINT_AUTH_PARAMETER_{LOCAL_CONNECTION}_USERNAME"
            )),
            Some("AK")
        );
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("VSTS_PUBLIC_VARIABLES"), Some(r#"["AWS.Region"]"#));
        let bad = RunArgs::parse(&["S3Upload".into(), "--input".into(), "nope=1".into()]).unwrap();
        assert!(
            agent_env(&task, &bad)
                .unwrap_err()
                .to_string()
                .contains("has no input 'nope'")
        );
    }

    #[test]
    fn decoding_masks_registered_secrets() {
        let mut secrets = Vec::new();
        assert_eq!(
            decode("##vso[task.setsecret]abc", &mut secrets),
            "[secret registered]"
        );
        assert_eq!(decode("value abc here", &mut secrets), "value *** here");
        assert_eq!(
            decode(
                "##vso[task.setvariable variable=x;issecret=true;]abc",
                &mut secrets
            ),
            "[task.setvariable variable=x issecret=true] ***"
        );
    }
}
