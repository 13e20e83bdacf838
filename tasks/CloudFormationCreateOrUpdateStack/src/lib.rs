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

pub mod params;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{ChangeSetType, Stack};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_cfn::changeset::{self, ChangeSet};
use vsts_cfn::events::EventStream;
use vsts_cfn::parameters::Parameter;
use vsts_cfn::wait::{Operation, describe_stack, status_of, wait_for_stack};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};

pub use params::{Params, Template};

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

/// The template as the API takes it.
#[derive(Debug, Clone)]
enum Spec {
    Body(String),
    Url(String),
    Previous,
}

/// What the run did, for the summary.
struct Report {
    action: String,
    status: String,
    change_set: Option<ChangeSet>,
}

impl Report {
    fn no_changes() -> Self {
        Report {
            action: "no changes".into(),
            status: "unchanged".into(),
            change_set: None,
        }
    }
}

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

    let spec = template_spec(task, setup, p).await?;
    console.info(&format!("Template: {}", p.template.describe()));
    let parameters = complete_parameters(task, &client, p, &spec, existing.as_ref(), exists).await;

    let report = match &p.change_set {
        None if exists => {
            update_directly(
                task,
                &client,
                p,
                &spec,
                &parameters,
                existing.as_ref(),
                deadline,
            )
            .await?
        }
        None => create_directly(task, &client, p, &spec, &parameters, deadline).await?,
        Some(cs) => {
            with_change_set(
                task,
                &client,
                p,
                cs,
                &spec,
                &parameters,
                exists,
                reviewing,
                deadline,
            )
            .await?
        }
    };

    let stack = describe_stack(&client, &p.stack_name)
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

/// Uploads a local template when a bucket is given; presigns S3 sources.
async fn template_spec(task: &Task, setup: &AwsSetup, p: &Params) -> Result<Spec> {
    Ok(match &p.template {
        Template::File {
            body, bucket: None, ..
        } => Spec::Body(body.clone()),
        Template::File {
            path,
            body,
            bucket: Some(bucket),
        } => {
            let key = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "template".into());
            let s3 = vsts_s3::client(task, setup, false, None);
            task.console.info(&format!(
                "Uploading the template ({} bytes) to s3://{bucket}/{key}",
                body.len()
            ));
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.clone().into_bytes().into())
                .send()
                .await
                .sdk_context(|| format!("uploading the template to s3://{bucket}/{key}"))?;
            Spec::Url(presign(&s3, bucket, &key).await?)
        }
        Template::Url(u) => Spec::Url(u.clone()),
        Template::S3 { bucket, key } => {
            Spec::Url(presign(&vsts_s3::client(task, setup, false, None), bucket, key).await?)
        }
        Template::UsePrevious => Spec::Previous,
    })
}

/// A presigned GET URL, as the original sends: CloudFormation reads the
/// template with it whatever the bucket's policy. Never printed.
async fn presign(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String> {
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(3600))
        .context("presigning configuration")?;
    let req = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .sdk_context(|| format!("presigning s3://{bucket}/{key}"))?;
    Ok(req.uri().to_string())
}

/// The parameters to send: the user's, plus UsePreviousValue for the
/// template's parameters the user did not give and the stack already has
/// (on update). Registers the values of NoEcho parameters as secrets.
/// Without GetTemplateSummary (not allowed, say) the user's parameters go
/// as they are.
async fn complete_parameters(
    task: &Task,
    client: &Client,
    p: &Params,
    spec: &Spec,
    existing: Option<&Stack>,
    exists: bool,
) -> Vec<Parameter> {
    let console = &task.console;
    let mut params = p.parameters.clone();
    let summary = {
        let req = client.get_template_summary();
        let req = match spec {
            Spec::Body(b) => req.template_body(b),
            Spec::Url(u) => req.template_url(u),
            Spec::Previous => req.stack_name(&p.stack_name),
        };
        req.send().await
    };
    let mut previous = Vec::new();
    match summary {
        Ok(summary) => {
            let declared = summary.parameters();
            for d in declared.iter().filter(|d| d.no_echo() == Some(true)) {
                if let Some(v) = params
                    .iter()
                    .find(|x| Some(x.key.as_str()) == d.parameter_key())
                    .and_then(|x| x.value.as_deref())
                {
                    console.set_secret(v);
                }
            }
            if exists && p.use_previous_values {
                let current: HashMap<&str, Option<&str>> = existing
                    .map(|s| {
                        s.parameters()
                            .iter()
                            .filter_map(|x| Some((x.parameter_key()?, x.parameter_value())))
                            .collect()
                    })
                    .unwrap_or_default();
                for d in declared {
                    let Some(key) = d.parameter_key() else {
                        continue;
                    };
                    let Some(value) = current.get(key) else {
                        continue;
                    };
                    if params.iter().any(|x| x.key == key) {
                        continue;
                    }
                    // When the current value is the default, the default
                    // gives it back; NoEcho values read as "****" and must
                    // be kept explicitly.
                    let is_default =
                        value.is_some() && *value == d.default_value() && d.no_echo() != Some(true);
                    if !is_default {
                        params.push(Parameter::previous(key));
                        previous.push(key.to_string());
                    }
                }
            }
        }
        Err(e) => console.debug(&format!(
            "GetTemplateSummary failed, parameters are sent as given: {}",
            vsts_aws_common::sdk_error_text(&e)
        )),
    }
    let given: Vec<&str> = p
        .parameters
        .iter()
        .map(|x| x.key.as_str())
        .filter(|k| !p.overridden.iter().any(|o| o == k))
        .collect();
    let mut parts = Vec::new();
    if !given.is_empty() {
        parts.push(format!(
            "{} (from {})",
            given.join(", "),
            p.parameters_source.as_deref().unwrap_or("the parameters")
        ));
    }
    if !p.overridden.is_empty() {
        parts.push(format!("{} (parameterOverrides)", p.overridden.join(", ")));
    }
    if !previous.is_empty() {
        parts.push(format!("{} (current values kept)", previous.join(", ")));
    }
    if !parts.is_empty() {
        console.info(&format!("Parameters: {}", parts.join("; ")));
    }
    params
}

/// Fills the request fields every operation shares, template included.
/// CreateStack has no UsePreviousTemplate: `new_stack` says so.
macro_rules! common_fields {
    ($req:expr, $p:expr, $spec:expr, $params:expr) => {
        common_fields!($req, $p, $spec, $params, |req| req
            .use_previous_template(true))
    };
    ($req:expr, $p:expr, $spec:expr, $params:expr, new_stack) => {
        common_fields!($req, $p, $spec, $params, |_req| bail!(
            "a new stack has no previous template"
        ))
    };
    ($req:expr, $p:expr, $spec:expr, $params:expr, |$r:ident| $previous:expr) => {{
        let req = $req
            .stack_name(&$p.stack_name)
            .set_parameters(Some($params.iter().map(Parameter::to_sdk).collect()))
            .set_capabilities((!$p.capabilities.is_empty()).then(|| $p.capabilities.clone()))
            .set_role_arn($p.role_arn.clone())
            .set_resource_types((!$p.resource_types.is_empty()).then(|| $p.resource_types.clone()))
            .set_notification_arns(
                (!$p.notification_arns.is_empty()).then(|| $p.notification_arns.clone()),
            )
            .set_tags((!$p.tags.is_empty()).then(|| $p.tags.clone()))
            .set_rollback_configuration($p.rollback.clone());
        match $spec {
            Spec::Body(b) => req.template_body(b),
            Spec::Url(u) => req.template_url(u),
            Spec::Previous => {
                let $r = req;
                $previous
            }
        }
    }};
}

async fn create_directly(
    task: &Task,
    client: &Client,
    p: &Params,
    spec: &Spec,
    parameters: &[Parameter],
    deadline: Instant,
) -> Result<Report> {
    let req = common_fields!(client.create_stack(), p, spec, parameters, new_stack)
        .on_failure(p.on_failure.clone())
        .client_request_token(vsts_cfn::request_token("create"))
        .set_enable_termination_protection(p.termination_protection.then_some(true));
    let out = req
        .send()
        .await
        .sdk_context(|| format!("creating stack {}", p.stack_name))?;
    let id = out.stack_id().unwrap_or(&p.stack_name).to_string();
    task.console.info(&format!("Creating stack {id}"));
    let mut events = EventStream::fresh(&id);
    let stack = wait_for_stack(
        client,
        &task.console,
        &id,
        Operation::Create,
        &mut events,
        remaining(deadline),
    )
    .await?;
    Ok(Report {
        action: "created".into(),
        status: stack.as_ref().map(status_of).unwrap_or_default(),
        change_set: None,
    })
}

async fn update_directly(
    task: &Task,
    client: &Client,
    p: &Params,
    spec: &Spec,
    parameters: &[Parameter],
    existing: Option<&Stack>,
    deadline: Instant,
) -> Result<Report> {
    let id = existing
        .and_then(|s| s.stack_id())
        .unwrap_or(&p.stack_name)
        .to_string();
    let mut events = EventStream::start(client, &id).await;
    let req = common_fields!(client.update_stack(), p, spec, parameters)
        .client_request_token(vsts_cfn::request_token("update"));
    match req.send().await {
        Ok(_) => {}
        Err(e) => {
            if let Some(message) = vsts_cfn::no_op_error(&e) {
                no_work(task, p, &message);
                return Ok(Report::no_changes());
            }
            return Err(e).sdk_context(|| format!("updating stack {}", p.stack_name));
        }
    }
    task.console.info(&format!("Updating stack {id}"));
    let stack = wait_for_stack(
        client,
        &task.console,
        &id,
        Operation::Update,
        &mut events,
        remaining(deadline),
    )
    .await?;
    Ok(Report {
        action: "updated".into(),
        status: stack.as_ref().map(status_of).unwrap_or_default(),
        change_set: None,
    })
}

fn no_work(task: &Task, p: &Params, message: &str) {
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

#[allow(clippy::too_many_arguments)]
async fn with_change_set(
    task: &Task,
    client: &Client,
    p: &Params,
    cs: &params::ChangeSetOptions,
    spec: &Spec,
    parameters: &[Parameter],
    exists: bool,
    reviewing: bool,
    deadline: Instant,
) -> Result<Report> {
    let console = &task.console;
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
    let created = common_fields!(client.create_change_set(), p, spec, parameters)
        .change_set_name(&cs.name)
        .change_set_type(kind.clone())
        .set_description(cs.description.clone())
        .set_include_nested_stacks(cs.include_nested.then_some(true))
        .send()
        .await;
    let out = match created {
        Ok(out) => out,
        // Usually a change set fails later with "didn't contain changes";
        // CloudFormation can also refuse it at once.
        Err(e) => {
            if let Some(message) = vsts_cfn::no_op_error(&e) {
                no_work(task, p, &message);
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
        remaining(deadline).min(Duration::from_secs(1800)),
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
            no_work(task, p, &set.status_reason);
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
    let stack = wait_for_stack(
        client,
        console,
        &stack_id,
        op,
        &mut events,
        remaining(deadline),
    )
    .await?;
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
