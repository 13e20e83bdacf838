//! CloudFormationExecuteChangeSet: executes a change set and waits.
//!
//! Beyond the original: the change set's plan is printed (and put in the
//! run summary) before it runs; one still being created is waited for; a
//! change set that cannot be executed says why; live stack events and root
//! causes as in the other CloudFormation tasks; `stackName` may be left out
//! when `changeSetName` is an ARN.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_cfn::changeset;
use vsts_cfn::events::EventStream;
use vsts_cfn::outputs::OutputOptions;
use vsts_cfn::wait::{Operation, describe_stack, status_of, wait_for_stack};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line};

#[derive(Debug)]
pub struct Params {
    pub change_set: String,
    pub stack_name: Option<String>,
    pub no_fail_on_empty: bool,
    pub delete_empty: bool,
    pub outputs: OutputOptions,
    pub timeout: Duration,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let change_set = inputs.required("changeSetName")?;
        let stack_name = inputs.get("stackName");
        if stack_name.is_none() && !change_set.starts_with("arn:") {
            bail!(
                "Input required: stackName (the change set '{change_set}' is given by name, so its stack must be named too; or give the change set's ARN)"
            );
        }
        Ok(Params {
            change_set,
            stack_name,
            no_fail_on_empty: inputs.bool("noFailOnEmptyChangeSet"),
            delete_empty: inputs.bool("deleteEmptyChangeSet"),
            outputs: OutputOptions::from_task(task)?,
            timeout: vsts_cfn::timeout_input(task)?,
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("changeSetName", 1600, "a change set name or ARN"),
    line("stackName", ceiling::ARN, "a stack name or stack ID"),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
    line("timeoutInMins", ceiling::NUMBER, "a number"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let started = Instant::now();
    let console = &task.console;
    let client = vsts_cfn::client(task, setup);
    let stack_label = p.stack_name.as_deref().unwrap_or("(from the ARN)");
    if changeset::describe(&client, &p.change_set, p.stack_name.as_deref())
        .await?
        .is_none()
    {
        bail!(
            "Change set {} does not exist for stack {stack_label} in region {}.",
            p.change_set,
            setup.region
        );
    }
    let set = changeset::wait_until_ready(
        &client,
        &p.change_set,
        p.stack_name.as_deref(),
        p.timeout.min(Duration::from_secs(1800)),
    )
    .await?;
    if set.is_no_op() {
        if !p.no_fail_on_empty {
            bail!(
                "Change set {} has no changes to execute ({}). Set 'noFailOnEmptyChangeSet: true' to treat this as success.",
                set.name,
                set.status_reason
            );
        }
        console.warning(&format!(
            "Change set {} has no changes: nothing executed ({}).",
            set.name, set.status_reason
        ));
        if p.delete_empty {
            console.info(&format!("Deleting the empty change set {}", set.name));
            client
                .delete_change_set()
                .change_set_name(&set.id)
                .send()
                .await
                .sdk_context(|| format!("deleting change set {}", set.name))?;
        }
        if let Some(stack) = describe_stack(&client, &set.stack_id).await? {
            vsts_cfn::outputs::publish(task, &p.outputs, &stack)?;
        }
        return Ok(());
    }
    if set.status == "FAILED" {
        bail!(
            "Change set {} failed and cannot be executed: {}",
            set.name,
            set.status_reason
        );
    }
    if set.execution_status != "AVAILABLE" {
        bail!(
            "Change set {} cannot be executed: its execution status is {}{}.",
            set.name,
            set.execution_status,
            if set.execution_status == "EXECUTE_COMPLETE" {
                " (it was executed already)"
            } else {
                ""
            }
        );
    }
    for line in changeset::preview_lines(&set) {
        console.info(&line);
    }
    let before = describe_stack(&client, &set.stack_id).await?;
    let op = match before.as_ref().map(status_of).as_deref() {
        Some("REVIEW_IN_PROGRESS") | None => Operation::Create,
        _ => Operation::Update,
    };
    let mut events = EventStream::start(&client, &set.stack_id).await;
    console.info(&format!(
        "Executing change set {} on stack {}",
        set.name, set.stack_name
    ));
    client
        .execute_change_set()
        .change_set_name(&set.id)
        .client_request_token(vsts_cfn::request_token("execute"))
        .send()
        .await
        .sdk_context(|| format!("executing change set {}", set.name))?;
    let stack = wait_for_stack(&client, console, &set.stack_id, op, &mut events, p.timeout)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("stack {} not found after the change set", set.stack_name)
        })?;
    let outputs_md = vsts_cfn::outputs::publish(task, &p.outputs, &stack)?;
    let secs = started.elapsed().as_secs();
    let status = status_of(&stack);
    console.info(&format!(
        "Change set {} executed: stack {} is {status} ({secs} s)",
        set.name, set.stack_name
    ));
    let mut md = format!(
        "### CloudFormation stack `{}`\n\nchange set `{}` executed — **{status}** in {secs} s, region {}\n\n",
        set.stack_name, set.name, setup.region
    );
    md.push_str(&changeset::preview_markdown(&set));
    md.push('\n');
    md.push_str(&outputs_md);
    task.upload_summary("cloudformation-execute", &md);
    Ok(())
}
