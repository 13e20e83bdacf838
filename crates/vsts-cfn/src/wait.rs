//! Waiting for a stack operation: polls DescribeStacks, prints new stack
//! events as they happen, and turns a failure into an error that names its
//! root cause. The wait is bounded; a timeout says what state the stack was
//! left in.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Stack;
use vsts_aws_common::SdkResultExt;
use vsts_task::Console;

use crate::events::{Event, EventStream, describe_causes, root_causes_deep};

/// What is being waited for, for messages: "creation", "update", "deletion".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Import,
}

impl Operation {
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Create => "creation",
            Operation::Update => "update",
            Operation::Delete => "deletion",
            Operation::Import => "import",
        }
    }

    fn success(self) -> &'static str {
        match self {
            Operation::Create => "CREATE_COMPLETE",
            Operation::Update => "UPDATE_COMPLETE",
            Operation::Delete => "DELETE_COMPLETE",
            Operation::Import => "IMPORT_COMPLETE",
        }
    }
}

/// How often to poll: at once, then 2 s growing to 10 s.
fn next_delay(d: Duration) -> Duration {
    (d * 3 / 2).clamp(Duration::from_secs(2), Duration::from_secs(10))
}

pub async fn describe_stack(client: &Client, stack: &str) -> Result<Option<Stack>> {
    match client.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) if vsts_aws_common::is_not_found(&e) => Ok(None),
        Err(e) => Err(e).sdk_context(|| format!("describing stack {stack}")),
    }
}

pub fn status_of(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// Waits until the stack's operation ends. `stack` should be the stack id
/// (a deleted stack is no longer found by name). Returns the final stack
/// (`None` when it is gone after a deletion).
///
/// When the agent cancels the step, the wait stops at once and fails
/// saying that CloudFormation goes on with the operation in AWS, with the
/// stack's last status seen: cancelling a pipeline does not stop it.
pub async fn wait_for_stack(
    client: &Client,
    console: &Console,
    stack: &str,
    op: Operation,
    events: &mut EventStream,
    timeout: Duration,
) -> Result<Option<Stack>> {
    let last_status = std::sync::Mutex::new(String::new());
    tokio::select! {
        done = poll_stack(client, console, stack, op, events, timeout, &last_status) => done,
        signal = vsts_task::cancelled() => {
            let seen = last_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let name = stack.rsplit_once(":stack/").map_or(stack, |(_, rest)| {
                rest.split('/').next().unwrap_or(rest)
            });
            let mut message = format!(
                "Cancelled ({signal}) while waiting for the {} of stack {name}: \
                 CloudFormation goes on with it in AWS",
                op.noun()
            );
            if !seen.is_empty() {
                message.push_str(&format!(" (the stack was {seen})"));
            }
            message.push_str("; follow it in the CloudFormation console");
            if op == Operation::Update {
                message.push_str(", or stop it with 'aws cloudformation cancel-update-stack'");
            }
            bail!("{message}.")
        }
    }
}

async fn poll_stack(
    client: &Client,
    console: &Console,
    stack: &str,
    op: Operation,
    events: &mut EventStream,
    timeout: Duration,
    last_status: &std::sync::Mutex<String>,
) -> Result<Option<Stack>> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut delay = Duration::ZERO;
    // Nested stacks met in the events, followed too: (path, stream).
    let mut nested: Vec<(String, EventStream)> = Vec::new();
    loop {
        tokio::time::sleep(delay).await;
        delay = next_delay(delay);
        let current = describe_stack(client, stack).await?;
        if events.available {
            match events.poll(client).await {
                Ok(new) => {
                    let since = events
                        .events
                        .first()
                        .map(|e| e.timestamp.clone())
                        .unwrap_or_default();
                    for e in &new {
                        console.info(&e.line());
                        follow_nested(&mut nested, "", e, &since);
                    }
                    poll_nested(client, console, &mut nested, &since).await;
                }
                Err(e) => {
                    events.available = false;
                    console.warning(&format!(
                        "Stack events cannot be read, so progress is not shown: {e:#}"
                    ));
                }
            }
        }
        let Some(current) = current else {
            if op == Operation::Delete {
                return Ok(None);
            }
            bail!(
                "Stack {stack} disappeared while waiting for its {}.",
                op.noun()
            );
        };
        let status = status_of(&current);
        {
            let mut last = last_status.lock().unwrap_or_else(|e| e.into_inner());
            if *last != status {
                console.debug(&format!("stack {stack}: {status}"));
                *last = status.clone();
            }
        }
        if !status.ends_with("_IN_PROGRESS") {
            if status == op.success() {
                return Ok(Some(current));
            }
            let since = events
                .events
                .first()
                .map(|e| e.timestamp.clone())
                .unwrap_or_default();
            let causes = root_causes_deep(client, &events.events, &since).await;
            let causes: Vec<&Event> = causes.iter().collect();
            let mut message = format!(
                "Stack {} {} failed: the stack is {status}",
                current.stack_name().unwrap_or(stack),
                op.noun(),
            );
            if let Some(reason) = current.stack_status_reason().filter(|r| !r.is_empty()) {
                message.push_str(&format!(" ({reason})"));
            }
            message.push('.');
            if causes.is_empty() {
                message.push_str(" No failure reason was found in the stack events.");
            } else {
                message.push_str(&describe_causes(&causes, 5));
            }
            bail!(message);
        }
        if Instant::now() >= deadline {
            bail!(
                "Timed out after {} minute(s) waiting for the {} of stack {}: it is still {status}. \
                 CloudFormation goes on with the operation; follow it in the console, or raise timeoutInMins.",
                timeout.as_secs().div_ceil(60),
                op.noun(),
                current.stack_name().unwrap_or(stack)
            );
        }
    }
}

/// Deletes a stack (by id: a deleted stack is not found by name) and
/// waits until it is gone, with its events.
pub async fn delete_stack(
    client: &Client,
    console: &Console,
    id: &str,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    let mut events = EventStream::start(client, id).await;
    client
        .delete_stack()
        .stack_name(id)
        .client_request_token(crate::request_token("delete"))
        .send()
        .await
        .sdk_context(|| format!("deleting stack {name}"))?;
    wait_for_stack(client, console, id, Operation::Delete, &mut events, timeout).await?;
    Ok(())
}

/// Starts following a nested stack when `e` is one (three levels at most).
fn follow_nested(nested: &mut Vec<(String, EventStream)>, parent: &str, e: &Event, since: &str) {
    if !e.is_nested_stack() || parent.matches('/').count() >= 2 {
        return;
    }
    if nested.iter().any(|(_, s)| s.stack() == e.physical_id) {
        return;
    }
    let path = if parent.is_empty() {
        e.logical_id.clone()
    } else {
        format!("{parent}/{}", e.logical_id)
    };
    nested.push((path, EventStream::since(&e.physical_id, since)));
}

/// Prints the new events of every nested stack followed, each resource
/// named by its path (`Network/PublicSubnet`). A nested stack whose events
/// cannot be read is dropped quietly: the parent's events still show it.
async fn poll_nested(
    client: &Client,
    console: &Console,
    nested: &mut Vec<(String, EventStream)>,
    since: &str,
) {
    let mut i = 0;
    while i < nested.len() {
        let path = nested[i].0.clone();
        match nested[i].1.poll(client).await {
            Ok(new) => {
                for mut e in new {
                    follow_nested(nested, &path, &e, since);
                    if !e.is_stack() {
                        e.logical_id = format!("{path}/{}", e.logical_id);
                        console.info(&e.line());
                    }
                }
                i += 1;
            }
            Err(_) => {
                nested.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_starts_at_once_then_backs_off_to_ten_seconds() {
        let mut d = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..8 {
            d = next_delay(d);
            seen.push(d.as_secs());
        }
        assert_eq!(seen, vec![2, 3, 4, 6, 10, 10, 10, 10]);
    }
}
