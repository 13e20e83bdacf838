//! CloudFormationDeleteStack: deletes a stack and waits until it is gone.
//!
//! Beyond the original: live stack events while waiting, a failed deletion
//! names the resources that could not be deleted and why, and the wait is
//! bounded by `timeoutInMins`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vsts_aws_common::AwsSetup;
use vsts_cfn::wait::{delete_stack, describe_stack, status_of};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line};

#[derive(Debug)]
pub struct Params {
    pub stack_name: String,
    pub timeout: Duration,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        Ok(Params {
            stack_name: task.inputs().required("stackName")?,
            timeout: vsts_cfn::timeout_input(task)?,
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("stackName", ceiling::ARN, "a stack name or stack ID"),
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
    let stack = describe_stack(&client, &p.stack_name)
        .await?
        .filter(|s| status_of(s) != "DELETE_COMPLETE");
    let Some(stack) = stack else {
        bail!(
            "Stack {} does not exist in region {}: there is nothing to delete.",
            p.stack_name,
            setup.region
        );
    };
    // By id from here on: a deleted stack is no longer found by name.
    let id = stack.stack_id().unwrap_or(&p.stack_name).to_string();
    console.info(&format!("Deleting stack {} ({id})", p.stack_name));
    delete_stack(&client, console, &id, &p.stack_name, p.timeout).await?;
    let secs = started.elapsed().as_secs();
    console.info(&format!("Stack {} deleted in {secs} s", p.stack_name));
    task.upload_summary("cloudformation-delete",
        &format!(
            "### CloudFormation stack `{}`\n\ndeleted — **DELETE_COMPLETE** in {secs} s, region {}\n",
            p.stack_name, setup.region
        ),
    );
    Ok(())
}
