//! AWSCLI: runs `aws <awsCommand> <awsSubCommand> <awsArguments>` with the
//! pipeline's AWS credentials and region in its environment, as the AWS
//! Toolkit task of the same name does.
//!
//! - The CLI is the agent's own (`aws` on its PATH; `aws.exe` or `aws.cmd`
//!   on Windows): it is not bundled, and a missing one fails the task
//!   naming what to install, before credentials are resolved.
//! - `awsArguments` is split as the agent's tool runner splits an argument
//!   line (spaces separate, double quotes group).
//! - The environment is AWSShellScript's: the credentials of the chain
//!   (registered as secrets first), the region in `AWS_REGION` and
//!   `AWS_DEFAULT_REGION`, the agent's proxy, and none of the agent's
//!   secret-bearing variables.
//! - A non-zero exit code fails the task and is named;
//!   `failOnStandardError` fails it on any standard error output.

use std::path::Path;

use anyhow::{Result, bail};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::tool::{self, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `awsCommand`, `awsSubCommand` (when given), then `awsArguments`.
    pub args: Vec<String>,
    pub fail_on_stderr: bool,
}

impl Params {
    /// Every input error surfaces here, before anything else happens.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let command = inputs.required("awsCommand")?;
        // One word, as the original passes it: "s3 cp" would reach the CLI
        // as a single, unknown command.
        if command.contains(char::is_whitespace) {
            bail!(
                "Input 'awsCommand': '{command}' is more than one word. Give the command alone (for example s3), \
                 the subcommand in awsSubCommand (cp) and the rest in awsArguments."
            );
        }
        let mut args = vec![command];
        if let Some(sub) = inputs.get("awsSubCommand") {
            if sub.contains(char::is_whitespace) {
                bail!(
                    "Input 'awsSubCommand': '{sub}' is more than one word. Give the subcommand alone (for example cp) \
                     and its options and parameters in awsArguments."
                );
            }
            args.push(sub);
        }
        args.extend(tool::split_arguments(
            &inputs.get("awsArguments").unwrap_or_default(),
        ));
        Ok(Params {
            args,
            fail_on_stderr: inputs.bool("failOnStandardError"),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line(
        "awsCommand",
        ceiling::VARIABLE,
        "an AWS CLI command (s3, ec2...)",
    ),
    line("awsSubCommand", ceiling::VARIABLE, "an AWS CLI subcommand"),
    line(
        "awsArguments",
        ceiling::TEXT,
        "the command's options and parameters",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let Some(aws_cli) = tool::which(&task.env, &["aws"]) else {
        bail!(
            "The AWS CLI (aws) was not found on the agent's PATH. Install it on the agent \
             (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html); \
             Microsoft-hosted agents have it."
        );
    };
    let setup = vsts_aws_common::configure(&task).await?;
    // Every secret in it is registered already.
    let aws = setup.tool_environment(&task).await?;
    // The agent starts the task in the job's default working folder; the
    // CLI runs there too, as the original's did.
    let cwd = std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_path_buf());
    let shown = format!("{} {}", aws_cli.display(), params.args.join(" "));
    task.console.info(&format!(
        "Running {shown} in {} with {} set.",
        cwd.display(),
        aws.aws_names()
    ));
    if let Some(left) = aws.minutes_left() {
        task.console.info(&format!(
            "The credentials handed to the CLI expire in {left} min."
        ));
    }
    let outcome = tool::run(tool::Run {
        program: &aws_cli,
        args: &params.args,
        cwd: &cwd,
        env: tool::environment(&task.env, &aws.vars),
    })
    .await?;
    let command = format!("aws {}", params.args[..2.min(params.args.len())].join(" "));
    match outcome {
        Outcome::Exited { code: 0, stderr } if stderr && params.fail_on_stderr => {
            bail!("{command} wrote to standard error, and failOnStandardError is true.")
        }
        Outcome::Exited { code: 0, .. } => {
            task.console.info(&format!("{command} succeeded."));
            Ok(())
        }
        Outcome::Exited { code, .. } => bail!("{command} exited with code {code}."),
        Outcome::Signalled(signal) => bail!("{command} was ended by signal {signal}."),
        Outcome::Cancelled(how) => {
            bail!("Cancelled ({how}): the AWS CLI was stopped.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "AWSCLI",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    #[test]
    fn the_command_line_is_built_like_the_originals() {
        let p = params(&[
            ("INPUT_AWSCOMMAND", "s3"),
            ("INPUT_AWSSUBCOMMAND", "cp"),
            (
                "INPUT_AWSARGUMENTS",
                r#""my file.txt" s3://b/k --metadata "a=1,b=two words""#,
            ),
        ])
        .unwrap();
        assert_eq!(
            p.args,
            [
                "s3",
                "cp",
                "my file.txt",
                "s3://b/k",
                "--metadata",
                "a=1,b=two words"
            ]
        );
        assert!(!p.fail_on_stderr);
        // A command without a subcommand (aws help) is passed as it is.
        let p = params(&[("INPUT_AWSCOMMAND", "help")]).unwrap();
        assert_eq!(p.args, ["help"]);
        let e = params(&[]).unwrap_err().to_string();
        assert!(e.contains("awsCommand"), "{e}");
        let e = params(&[("INPUT_AWSCOMMAND", "s3 cp")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Input 'awsCommand': 's3 cp' is more than one word."),
            "{e}"
        );
        let e = params(&[("INPUT_AWSCOMMAND", "s3"), ("INPUT_AWSSUBCOMMAND", "cp x")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Input 'awsSubCommand'"), "{e}");
    }
}
