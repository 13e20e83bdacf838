//! Following a command to its end: its progress while it runs, then each
//! instance's status and output.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_ssm::types::{CommandInvocationStatus, CommandStatus};
use vsts_aws_common::sdk_error_text;
use vsts_task::{Console, Task};

/// The command as it ended, and what each instance did (`Err`: the
/// per-instance results could not be read).
#[derive(Debug)]
pub struct Finished {
    pub status: CommandStatus,
    pub details: String,
    pub targets: i32,
    pub errors: i32,
    pub timed_out: i32,
    pub invocations: std::result::Result<Vec<Invocation>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub instance: String,
    pub status: CommandInvocationStatus,
    pub details: String,
    /// `(step name, exit code, output)` of each step of the document.
    pub steps: Vec<(String, i32, String)>,
}

impl Invocation {
    fn succeeded(&self) -> bool {
        self.status == CommandInvocationStatus::Success
    }

    fn exit_code(&self) -> Option<i32> {
        self.steps
            .iter()
            .map(|(_, code, _)| *code)
            .find(|code| *code != 0)
            .or_else(|| self.steps.first().map(|(_, code, _)| *code))
    }
}

fn terminal(status: &CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::Success
            | CommandStatus::Failed
            | CommandStatus::TimedOut
            | CommandStatus::Cancelled
    )
}

/// Polls the command until it ends, printing each change of its state.
/// When `limit` runs out or the step is cancelled the command is cancelled
/// and the task fails.
pub async fn wait(
    console: &Console,
    ssm: &aws_sdk_ssm::Client,
    command_id: &str,
    limit: Duration,
) -> Result<Finished> {
    let start = Instant::now();
    let mut delay = Duration::from_secs(1);
    let mut last = String::new();
    console.info(&format!(
        "Waiting up to {} s for command {command_id} to finish.",
        limit.as_secs()
    ));
    loop {
        let listed = ssm
            .list_commands()
            .command_id(command_id)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "Reading the state of command {command_id} failed: {}",
                    sdk_error_text(&e)
                )
            })?;
        let Some(command) = listed.commands.unwrap_or_default().into_iter().next() else {
            bail!("Systems Manager no longer knows command {command_id}.");
        };
        let status = command.status.clone().unwrap_or(CommandStatus::Pending);
        let shown = format!(
            "Command {command_id}: {}, {} of {} instance(s) done, {} failed, {} not reached",
            command.status_details.as_deref().unwrap_or(status.as_str()),
            command.completed_count,
            command.target_count,
            command.error_count,
            command.delivery_timed_out_count,
        );
        if shown != last {
            console.info(&shown);
            last = shown;
        }
        if terminal(&status) {
            let invocations = invocations(ssm, command_id).await;
            return Ok(Finished {
                details: command
                    .status_details
                    .unwrap_or_else(|| status.as_str().to_string()),
                status,
                targets: command.target_count,
                errors: command.error_count,
                timed_out: command.delivery_timed_out_count,
                invocations,
            });
        }
        if start.elapsed() >= limit {
            let cancelled = cancel(ssm, command_id).await;
            bail!(
                "Command {command_id} did not finish within {} s (input 'waitTimeoutSeconds'); {cancelled}",
                limit.as_secs()
            );
        }
        let pause = delay.min(limit.saturating_sub(start.elapsed()));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            how = vsts_task::cancelled() => {
                let cancelled = cancel(ssm, command_id).await;
                bail!("The step was cancelled ({how}) while command {command_id} ran; {cancelled}");
            }
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Cancels the command; says what happened, for the error.
async fn cancel(ssm: &aws_sdk_ssm::Client, command_id: &str) -> String {
    match ssm.cancel_command().command_id(command_id).send().await {
        Ok(_) => "the command was cancelled on the instances it had not finished on.".to_string(),
        Err(e) => format!(
            "cancelling it failed ({}): it may still be running.",
            sdk_error_text(&e)
        ),
    }
}

/// Every instance's result, with the output of each step.
async fn invocations(
    ssm: &aws_sdk_ssm::Client,
    command_id: &str,
) -> std::result::Result<Vec<Invocation>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ssm
            .list_command_invocations()
            .command_id(command_id)
            .details(true)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error_text(&e))?;
        for inv in page.command_invocations.unwrap_or_default() {
            out.push(Invocation {
                instance: inv.instance_id.unwrap_or_default(),
                status: inv.status.unwrap_or(CommandInvocationStatus::Pending),
                details: inv.status_details.unwrap_or_default(),
                steps: inv
                    .command_plugins
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        (
                            p.name.unwrap_or_default(),
                            p.response_code,
                            p.output.unwrap_or_default(),
                        )
                    })
                    .collect(),
            });
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(out)
}

/// Prints each instance's status and output, and fails unless every
/// instance succeeded.
pub fn report(task: &Task, document: &str, command_id: &str, f: &Finished) -> Result<()> {
    let console = &task.console;
    let mut failed = Vec::new();
    match &f.invocations {
        Ok(list) => {
            for inv in list {
                let code = inv
                    .exit_code()
                    .map(|c| format!(", exit code {c}"))
                    .unwrap_or_default();
                console.group(&format!("{}: {}{code}", inv.instance, inv.details));
                for (name, code, output) in &inv.steps {
                    if inv.steps.len() > 1 {
                        console.info(&format!("--- step {name} (exit code {code})"));
                    }
                    for line in output.lines() {
                        console.info(line);
                    }
                }
                console.end_group();
                if !inv.succeeded() {
                    console.error(&format!(
                        "{}: {}{code} (command {command_id})",
                        inv.instance, inv.details
                    ));
                    failed.push(format!("{} {}{code}", inv.instance, inv.details));
                }
            }
        }
        Err(e) => console.warning(&format!(
            "The results of each instance could not be read (ssm:ListCommandInvocations): {e}"
        )),
    }
    let ok = f.status == CommandStatus::Success
        && failed.is_empty()
        && f.errors == 0
        && f.timed_out == 0;
    if ok {
        console.info(&format!(
            "Command {command_id} ({document}) succeeded on {} instance(s).",
            f.targets
        ));
        return Ok(());
    }
    let which = if failed.is_empty() {
        format!("{} failed, {} not reached", f.errors, f.timed_out)
    } else {
        failed.join("; ")
    };
    bail!(
        "Command {command_id} ({document}) ended {}: {which}.",
        f.details
    )
}
