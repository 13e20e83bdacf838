//! AWSShellScript: runs a script file or an inline script with bash, the
//! pipeline's AWS credentials and region in its environment, as the AWS
//! Toolkit task of the same name does.
//!
//! - The script's environment is the task's, with `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (when the credentials have
//!   one), `AWS_REGION` and `AWS_DEFAULT_REGION` set from the credential
//!   and region chain (keys, assumed role, OIDC or the agent's identity),
//!   the agent's proxy in `HTTPS_PROXY`/`HTTP_PROXY` (as the original),
//!   and without the agent's secret-bearing variables (`SECRET_*`,
//!   `ENDPOINT_AUTH_*`, `SYSTEM_ACCESSTOKEN`), as the agent's own script
//!   tasks do. Every secret is registered before the script starts (the
//!   original did not register assumed-role credentials).
//! - Working directory: `workingDirectory` (created when missing) with
//!   `disableAutoCwd`, else `System.DefaultWorkingDirectory`, else the
//!   script's folder, as the original.
//! - The script's output streams live; its standard error goes to the log
//!   as the original sends it (`failOnStandardError` fails the task when
//!   there is any). A non-zero exit code fails the task and is named.
//!   Cancelling the step ends the script's whole process group.

mod shell;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::tool::{self, Outcome};

pub use vsts_task::tool::split_arguments;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    File(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub script: Script,
    pub arguments: Vec<String>,
    /// `workingDirectory`, when `disableAutoCwd` is set.
    pub working_directory: Option<PathBuf>,
    pub fail_on_stderr: bool,
}

impl Params {
    /// Every input error surfaces here, before credentials are resolved.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let default_dir = task
            .env
            .get("SYSTEM_DEFAULTWORKINGDIRECTORY")
            .map(PathBuf::from);
        let script =
            match inputs.pick("scriptType", &["filePath", "inline"])? {
                None | Some("filePath") => {
                    let path = inputs.path("filePath").ok_or_else(|| {
                        anyhow!("Input required: filePath (scriptType is 'filePath')")
                    })?;
                    // Relative to the default working folder, as the agent's
                    // file inputs are.
                    let path = match (&default_dir, path.is_relative()) {
                        (Some(dir), true) => dir.join(path),
                        _ => path,
                    };
                    if !path.is_file() {
                        bail!(
                            "Input 'filePath': the script '{}' does not exist (or is not a file).",
                            path.display()
                        );
                    }
                    Script::File(path)
                }
                Some(_) => Script::Inline(inputs.get("inlineScript").ok_or_else(|| {
                    anyhow!("Input required: inlineScript (scriptType is 'inline')")
                })?),
            };
        let working_directory = if inputs.bool("disableAutoCwd") {
            Some(
                inputs
                    .get("workingDirectory")
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        anyhow!("Input required: workingDirectory (disableAutoCwd is true)")
                    })?,
            )
        } else {
            None
        };
        Ok(Params {
            script,
            arguments: split_arguments(&inputs.get("arguments").unwrap_or_default()),
            working_directory,
            fail_on_stderr: inputs.bool("failOnStandardError"),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("arguments", ceiling::TEXT, "the script's arguments"),
    line("filePath", ceiling::PATH, "a script path"),
    lines("inlineScript", 5000, "a script of up to 5,000 characters"),
    line("workingDirectory", ceiling::PATH, "a folder path"),
    line("durationSeconds", ceiling::NUMBER, "a number of seconds"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let shell = shell::find(&task.env)?;
    // A longer session for an assumed role or OIDC.
    let task = vsts_aws_common::with_session_duration(task, "durationSeconds")?;
    let setup = vsts_aws_common::configure(&task).await?;
    // Every secret in it is registered already.
    let aws = setup.tool_environment(&task).await?;
    if let Some(left) = aws.minutes_left() {
        task.console.info(&format!(
            "The script's credentials expire in {left} min. For a longer assumed-role or OIDC session, set \
             durationSeconds (up to the role's maximum session duration)."
        ));
    }

    // An inline script goes to a file in the agent's temporary folder,
    // removed whatever happens.
    let inline;
    let script_path = match &params.script {
        Script::File(path) => path.clone(),
        Script::Inline(text) => {
            // bash reads a carriage return as part of a command: a script
            // typed in an editor on Windows would fail on every line.
            inline = tool::TempScript::write(
                &task.temp_dir(),
                "awsshellscript",
                "sh",
                text.replace("\r\n", "\n").as_bytes(),
            )?;
            inline.path().to_path_buf()
        }
    };
    let cwd = match &params.working_directory {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "Input 'workingDirectory': cannot create '{}'",
                    dir.display()
                )
            })?;
            dir.clone()
        }
        None => task
            .env
            .get("SYSTEM_DEFAULTWORKINGDIRECTORY")
            .map(PathBuf::from)
            .or_else(|| script_path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    task.console.info(&format!(
        "Running {} {} in {} with {} set.",
        shell.display(),
        script_path.display(),
        cwd.display(),
        aws.aws_names()
    ));
    let script = shell::script_argument(&shell, &script_path)?;
    let args: Vec<&str> = std::iter::once(script.as_str())
        .chain(params.arguments.iter().map(String::as_str))
        .collect();
    let outcome = tool::run(tool::Run {
        program: &shell,
        args: &args,
        cwd: &cwd,
        env: tool::environment(&task.env, &aws.vars),
    })
    .await?;
    match outcome {
        Outcome::Exited { code: 0, stderr } if stderr && params.fail_on_stderr => {
            bail!("The script wrote to standard error, and failOnStandardError is true.")
        }
        Outcome::Exited { code: 0, .. } => {
            task.console.info("The script succeeded.");
            Ok(())
        }
        Outcome::Exited { code, .. } => bail!("The script exited with code {code}."),
        Outcome::Signalled(signal) => {
            bail!("The script was ended by signal {signal}.")
        }
        Outcome::Cancelled(how) => {
            bail!("Cancelled ({how}): the script and the processes it started were stopped.")
        }
    }
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
    fn script_inputs_follow_the_original() {
        let dir = std::env::temp_dir().join(format!("awsshell-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.sh"), "echo hi\n").unwrap();
        let d = dir.to_str().unwrap();
        // Relative to the default working folder.
        let p = Params::from_task(&task(&[
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
            ("INPUT_FILEPATH", "s.sh"),
            ("INPUT_ARGUMENTS", r#"one "two words" three"#),
        ]))
        .unwrap();
        assert_eq!(p.script, Script::File(dir.join("s.sh")));
        assert_eq!(p.arguments, ["one", "two words", "three"]);
        assert_eq!(p.working_directory, None);
        let e = Params::from_task(&task(&[
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
            ("INPUT_FILEPATH", "missing.sh"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("Input 'filePath': the script '"), "{e}");
        assert!(e.contains("missing.sh' does not exist"), "{e}");
        // The agent fills an empty filePath with the default folder.
        let e = Params::from_task(&task(&[
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
            ("INPUT_FILEPATH", d),
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(e, "Input required: filePath (scriptType is 'filePath')");
        let e = Params::from_task(&task(&[("INPUT_SCRIPTTYPE", "inline")]))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Input required: inlineScript (scriptType is 'inline')");
        let e = Params::from_task(&task(&[
            ("INPUT_SCRIPTTYPE", "inline"),
            ("INPUT_INLINESCRIPT", "true"),
            ("INPUT_DISABLEAUTOCWD", "true"),
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "Input required: workingDirectory (disableAutoCwd is true)"
        );
        let e = Params::from_task(&task(&[("INPUT_SCRIPTTYPE", "python")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be one of: filePath, inline"), "{e}");
    }
}
