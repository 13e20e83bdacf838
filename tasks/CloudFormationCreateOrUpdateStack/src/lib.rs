//! CloudFormationCreateOrUpdateStack: creates a stack or updates it,
//! directly or through a change set.
//!
//! Beyond the original: parameter overrides (`parameterOverrides`) on top
//! of a JSON or YAML file (list, map or CodePipeline shape); parameters not
//! given keep their current value on update (`usePreviousParameterValues`);
//! values of `NoEcho` parameters are registered as secrets; a change set
//! preview (action, logical id, type, replacement) in the log and the run
//! summary; live stack events while waiting; a failure names its root
//! cause; every "nothing to update" wording is a success; a failed change
//! set the task created is deleted (with the empty stack a failed first
//! change set leaves); a stack in ROLLBACK_COMPLETE is re-created only on
//! request (`recreateRolledBackStack`); an operation already in progress is
//! waited for; termination protection on create; `disableRollback` works.
//!
//! `execute` settles the stack (waits out an operation in progress,
//! re-creates a rolled-back first creation on request), then hands one
//! `Deploy` to the step that applies: `direct` (CreateStack/UpdateStack) or
//! `change_set`. `template` turns the template source into what the API
//! takes; `stack_parameters` completes the parameters to send.

pub mod params;
mod stack_parameters;
mod template;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Stack;
use vsts_aws_common::AwsSetup;
use vsts_cfn::changeset::{self, ChangeSet};
use vsts_cfn::parameters::Parameter;
use vsts_cfn::wait::{describe_stack, status_of};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};

pub use params::{Params, Template};
use template::Spec;

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("stackName", 128, "a stack name"),
    line("templateFile", ceiling::PATH, "a file path"),
    line("s3BucketName", 63, "an S3 bucket name"),
    line("s3ObjectKey", 1024, "an S3 object key"),
    line("templateUrl", 5120, "CloudFormation's TemplateURL"),
    line("templateParametersFile", ceiling::PATH, "a file path"),
    lines("templateParameters", ceiling::TEXT, "inline parameters"),
    lines("parameterOverrides", ceiling::TEXT, "parameter overrides"),
    line("changeSetName", 128, "a change set name"),
    line("description", 1024, "a change set description"),
    line("roleARN", ceiling::ARN, "an IAM role ARN"),
    lines("resourceTypes", ceiling::TEXT, "a list of resource types"),
    lines(
        "notificationARNs",
        ceiling::TEXT,
        "a list of SNS topic ARNs",
    ),
    lines("tags", ceiling::TEXT, "a list of tags"),
    line("monitoringTimeInMinutes", ceiling::NUMBER, "a number"),
    lines("rollbackTriggerARNs", ceiling::TEXT, "a list of alarm ARNs"),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
    line("timeoutInMins", ceiling::NUMBER, "a number"),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

/// What every step of one run shares: the task, the client, the inputs,
/// the deadline, the template and parameters to send, and the stack as it
/// was before this run.
pub(crate) struct Deploy<'a> {
    pub(crate) task: &'a Task,
    pub(crate) client: Client,
    pub(crate) p: &'a Params,
    pub(crate) deadline: Instant,
    pub(crate) spec: Spec,
    pub(crate) parameters: Vec<Parameter>,
    /// The stack before this run; `exists` is false for none and for a
    /// stack a change set created but never executed (`reviewing`).
    pub(crate) existing: Option<Stack>,
    pub(crate) exists: bool,
    pub(crate) reviewing: bool,
}

impl Deploy<'_> {
    /// Time left before the run's timeout.
    pub(crate) fn remaining(&self) -> Duration {
        remaining(self.deadline)
    }

    /// CloudFormation has nothing to change: a success, with a warning when
    /// the user asked for one.
    pub(crate) fn no_work(&self, message: &str) {
        let (task, p) = (self.task, self.p);
        let text = format!(
            "Stack {} is already up to date: CloudFormation reports no changes to make ({})",
            p.stack_name,
            message.trim()
        );
        if p.warn_when_no_work {
            task.console.warning(&text);
        } else {
            task.console.info(&text);
        }
    }
}

/// What the run did, for the summary.
pub(crate) struct Report {
    pub(crate) action: String,
    pub(crate) status: String,
    pub(crate) change_set: Option<ChangeSet>,
}

impl Report {
    pub(crate) fn no_changes() -> Self {
        Report {
            action: "no changes".into(),
            status: "unchanged".into(),
            change_set: None,
        }
    }
}

/// Fills the request fields every operation shares, template included.
/// CreateStack has no UsePreviousTemplate: `new_stack` says so.
macro_rules! common_fields {
    ($req:expr, $d:expr) => {
        common_fields!($req, $d, |req| req.use_previous_template(true))
    };
    ($req:expr, $d:expr, new_stack) => {
        common_fields!($req, $d, |_req| anyhow::bail!(
            "a new stack has no previous template"
        ))
    };
    ($req:expr, $d:expr, |$r:ident| $previous:expr) => {{
        let d = &$d;
        let req = $req
            .stack_name(&d.p.stack_name)
            .set_parameters(Some(
                d.parameters
                    .iter()
                    .map(vsts_cfn::parameters::Parameter::to_sdk)
                    .collect(),
            ))
            .set_capabilities((!d.p.capabilities.is_empty()).then(|| d.p.capabilities.clone()))
            .set_role_arn(d.p.role_arn.clone())
            .set_resource_types(
                (!d.p.resource_types.is_empty()).then(|| d.p.resource_types.clone()),
            )
            .set_notification_arns(
                (!d.p.notification_arns.is_empty()).then(|| d.p.notification_arns.clone()),
            )
            .set_tags((!d.p.tags.is_empty()).then(|| d.p.tags.clone()))
            .set_rollback_configuration(d.p.rollback.clone());
        match &d.spec {
            $crate::template::Spec::Body(b) => req.template_body(b),
            $crate::template::Spec::Url(u) => req.template_url(u),
            $crate::template::Spec::Previous => {
                let $r = req;
                $previous
            }
        }
    }};
}

// After the macro: the modules that use it.
mod change_set;
mod direct;

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let started = Instant::now();
    let console = &task.console;
    let client = vsts_cfn::client(task, setup);
    let deadline = started + p.timeout;

    console.info(&format!("Checking whether stack {} exists", p.stack_name));
    let mut existing = settle(task, &client, p, deadline).await?;
    if let Some(s) = &existing
        && status_of(s) == "ROLLBACK_COMPLETE"
    {
        let id = s.stack_id().unwrap_or(&p.stack_name).to_string();
        if !p.recreate_rolled_back {
            // Say why it failed back then, when the events still tell.
            let events = vsts_cfn::events::events_since(&client, &id, "")
                .await
                .unwrap_or_default();
            let causes = vsts_cfn::events::root_causes_deep(&client, &events, "").await;
            let causes: Vec<&vsts_cfn::events::Event> = causes.iter().collect();
            bail!(
                "Stack {} is in ROLLBACK_COMPLETE: its first creation failed and CloudFormation cannot update it. \
                 Delete it, or set 'recreateRolledBackStack: true' to let this task delete and re-create it.{}",
                p.stack_name,
                vsts_cfn::events::describe_causes(&causes, 5)
            );
        }
        console.warning(&format!(
            "Stack {} is in ROLLBACK_COMPLETE after a failed creation: deleting it to create it again (recreateRolledBackStack).",
            p.stack_name
        ));
        vsts_cfn::wait::delete_stack(&client, console, &id, &p.stack_name, remaining(deadline))
            .await?;
        existing = None;
    }
    // A stack a change set created but never executed has no resources.
    let reviewing = existing
        .as_ref()
        .is_some_and(|s| status_of(s) == "REVIEW_IN_PROGRESS");
    let exists = existing.is_some() && !reviewing;
    if reviewing && p.change_set.is_none() {
        bail!(
            "Stack {} is in REVIEW_IN_PROGRESS: a change set created it and was never executed. \
             Execute or delete that change set (or the stack), or set 'useChangeSet: true' to create it through a new change set.",
            p.stack_name
        );
    }
    if !exists && matches!(p.template, Template::UsePrevious) {
        bail!(
            "Input 'templateSource' is 'usePrevious', but stack {} does not exist yet: there is no previous template to use.",
            p.stack_name
        );
    }
    match &existing {
        Some(s) if exists => console.info(&format!(
            "Stack {} exists ({}): updating it",
            p.stack_name,
            status_of(s)
        )),
        _ => console.info(&format!(
            "Stack {} does not exist: creating it",
            p.stack_name
        )),
    }

    let spec = template::template_spec(task, setup, p).await?;
    console.info(&format!("Template: {}", p.template.describe()));
    let mut deploy = Deploy {
        task,
        client,
        p,
        deadline,
        spec,
        parameters: Vec::new(),
        existing,
        exists,
        reviewing,
    };
    deploy.parameters = stack_parameters::complete(&deploy).await;
    let client = &deploy.client;

    let report = match &p.change_set {
        None if exists => direct::update(&deploy).await?,
        None => direct::create(&deploy).await?,
        Some(cs) => change_set::deploy(&deploy, cs).await?,
    };

    let stack = describe_stack(client, &p.stack_name)
        .await?
        .with_context(|| format!("stack {} not found after the operation", p.stack_name))?;
    let outputs_md = vsts_cfn::outputs::publish(task, &p.outputs, &stack)?;
    let secs = started.elapsed().as_secs();
    console.info(&format!(
        "Stack {}: {} ({}) in {secs} s",
        p.stack_name, report.action, report.status
    ));
    let mut md = format!(
        "### CloudFormation stack `{}`\n\n{} — **{}** in {secs} s, region {}\n\n",
        p.stack_name, report.action, report.status, setup.region
    );
    if let Some(set) = &report.change_set {
        md.push_str(&changeset::preview_markdown(set));
        md.push('\n');
    }
    md.push_str(&outputs_md);
    task.upload_summary("cloudformation", &md);
    Ok(())
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Describes the stack; when an operation is running on it, waits for that
/// operation to end first (CloudFormation would refuse ours).
async fn settle(
    task: &Task,
    client: &Client,
    p: &Params,
    deadline: Instant,
) -> Result<Option<Stack>> {
    let mut announced = false;
    let mut delay = Duration::from_secs(2);
    loop {
        let stack = describe_stack(client, &p.stack_name).await?;
        let Some(s) = &stack else { return Ok(None) };
        let status = status_of(s);
        if !status.ends_with("_IN_PROGRESS") || status == "REVIEW_IN_PROGRESS" {
            return Ok(stack);
        }
        if !announced {
            task.console.info(&format!(
                "Stack {} is {status}: waiting for that operation to finish first",
                p.stack_name
            ));
            announced = true;
        }
        if Instant::now() >= deadline {
            bail!(
                "Timed out waiting for stack {} to leave {status} before updating it.",
                p.stack_name
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(10));
    }
}
