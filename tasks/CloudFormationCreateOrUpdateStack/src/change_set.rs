//! Create or update through a change set.

use std::time::Duration;

use anyhow::{Result, bail};
use aws_sdk_cloudformation::types::ChangeSetType;
use vsts_aws_common::SdkResultExt;
use vsts_cfn::changeset;
use vsts_cfn::events::EventStream;
use vsts_cfn::wait::{Operation, status_of, wait_for_stack};

use crate::params::ChangeSetOptions;
use crate::{Deploy, Report};

/// Creates the change set (replacing one of the same name), shows its plan,
/// and executes it unless asked not to. A failed change set is deleted,
/// with the empty stack a failed first change set leaves.
pub(crate) async fn deploy(d: &Deploy<'_>, cs: &ChangeSetOptions) -> Result<Report> {
    let (client, p, console) = (&d.client, d.p, &d.task.console);
    let (exists, reviewing) = (d.exists, d.reviewing);
    if (exists || reviewing)
        && let Some(old) = changeset::describe(client, &cs.name, Some(&p.stack_name)).await?
    {
        console.info(&format!(
            "Deleting the existing change set {} ({}) to create it again",
            cs.name, old.status
        ));
        client
            .delete_change_set()
            .change_set_name(&old.id)
            .send()
            .await
            .sdk_context(|| format!("deleting change set {}", cs.name))?;
    }
    let kind = if exists {
        ChangeSetType::Update
    } else {
        ChangeSetType::Create
    };
    console.info(&format!(
        "Creating change set {} ({}) for stack {}",
        cs.name,
        kind.as_str(),
        p.stack_name
    ));
    let created = common_fields!(client.create_change_set(), d)
        .change_set_name(&cs.name)
        .change_set_type(kind.clone())
        .set_description(cs.description.clone())
        .set_include_nested_stacks(cs.include_nested.then_some(true))
        // A retry after a lost answer is then not a second change set.
        .client_token(vsts_cfn::request_token("changeset"))
        .send()
        .await;
    let out = match created {
        Ok(out) => out,
        // Usually a change set fails later with "didn't contain changes";
        // CloudFormation can also refuse it at once.
        Err(e) => {
            if let Some(message) = vsts_cfn::no_op_error(&e) {
                d.no_work(&message);
                return Ok(Report::no_changes());
            }
            return Err(e).sdk_context(|| {
                format!("creating change set {} for stack {}", cs.name, p.stack_name)
            });
        }
    };
    let set_id = out.id().unwrap_or(&cs.name).to_string();
    let stack_id = out.stack_id().unwrap_or(&p.stack_name).to_string();
    let set = changeset::wait_until_ready(
        client,
        &set_id,
        None,
        d.remaining().min(Duration::from_secs(1800)),
    )
    .await?;

    if set.status == "FAILED" {
        // Nothing half-done: the failed change set goes, and so does the
        // empty stack a first change set created.
        let _ = client
            .delete_change_set()
            .change_set_name(&set_id)
            .send()
            .await;
        if set.is_no_op() {
            d.no_work(&set.status_reason);
            // No plan in the summary: an empty change set lists nothing
            // that will happen.
            return Ok(Report::no_changes());
        }
        if !exists && !reviewing {
            let _ = client.delete_stack().stack_name(&stack_id).send().await;
        }
        bail!(
            "Change set {} for stack {} failed: {}",
            cs.name,
            p.stack_name,
            set.status_reason
        );
    }
    for line in changeset::preview_lines(&set) {
        console.info(&line);
    }
    if !cs.auto_execute {
        console.info(&format!(
            "Change set {} is ready and was not executed (autoExecuteChangeSet is false). \
             Execute it with CloudFormationExecuteChangeSet or in the console.",
            cs.name
        ));
        return Ok(Report {
            action: "change set created".into(),
            status: set.execution_status.clone(),
            change_set: Some(set),
        });
    }
    let mut events = EventStream::start(client, &stack_id).await;
    console.info(&format!("Executing change set {}", cs.name));
    client
        .execute_change_set()
        .change_set_name(&set_id)
        .client_request_token(vsts_cfn::request_token("execute"))
        .send()
        .await
        .sdk_context(|| format!("executing change set {}", cs.name))?;
    let op = if exists {
        Operation::Update
    } else {
        Operation::Create
    };
    let stack = wait_for_stack(client, console, &stack_id, op, &mut events, d.remaining()).await?;
    // A change set cannot carry it: set once the stack exists. The stack
    // is there and complete either way, so a refusal is a warning.
    if !exists && p.termination_protection {
        let protected = client
            .update_termination_protection()
            .stack_name(&stack_id)
            .enable_termination_protection(true)
            .send()
            .await;
        if let Err(e) = protected {
            console.warning(&format!(
                "Stack {} was created, but termination protection could not be enabled: {}",
                p.stack_name,
                vsts_aws_common::sdk_error_text(&e)
            ));
        }
    }
    Ok(Report {
        action: if exists { "updated" } else { "created" }.into(),
        status: stack.as_ref().map(status_of).unwrap_or_default(),
        change_set: Some(set),
    })
}
