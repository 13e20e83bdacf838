//! CreateStack and UpdateStack without a change set.

use anyhow::Result;
use vsts_aws_common::SdkResultExt;
use vsts_cfn::events::EventStream;
use vsts_cfn::wait::{Operation, status_of, wait_for_stack};

use crate::{Deploy, Report};

/// CreateStack, then wait for it.
pub(crate) async fn create(d: &Deploy<'_>) -> Result<Report> {
    let (client, p) = (&d.client, d.p);
    let req = common_fields!(client.create_stack(), d, new_stack)
        .on_failure(p.on_failure.clone())
        .client_request_token(vsts_cfn::request_token("create"))
        .set_enable_termination_protection(p.termination_protection.then_some(true));
    let id = match req.send().await {
        Ok(out) => out.stack_id().unwrap_or(&p.stack_name).to_string(),
        Err(e) => match created_by_lost_attempt(d, &e).await {
            Some(id) => {
                d.task.console.info(&format!(
                    "Stack {} exists already, with the template this task sent: an earlier attempt of CreateStack, whose answer the network lost, created it.",
                    p.stack_name
                ));
                id
            }
            None => return Err(e).sdk_context(|| format!("creating stack {}", p.stack_name)),
        },
    };
    d.task.console.info(&format!("Creating stack {id}"));
    let mut events = EventStream::fresh(&id);
    let stack = wait_for_stack(
        client,
        &d.task.console,
        &id,
        Operation::Create,
        &mut events,
        d.remaining(),
    )
    .await?;
    Ok(Report {
        action: "created".into(),
        status: stack.as_ref().map(status_of).unwrap_or_default(),
        change_set: None,
    })
}

/// The id of the stack when CreateStack was refused because the stack
/// exists, and it is a stack being created (or just created) from exactly
/// the template body this task sent: a retry of the call after the network
/// lost the first answer. CloudFormation itself recognises such a retry by
/// its ClientRequestToken; this covers services that do not. `None` for
/// anything else, such as someone else's stack.
async fn created_by_lost_attempt(
    d: &Deploy<'_>,
    e: &aws_sdk_cloudformation::error::SdkError<
        aws_sdk_cloudformation::operation::create_stack::CreateStackError,
    >,
) -> Option<String> {
    let refused = e.as_service_error()?;
    if !refused.is_already_exists_exception() {
        return None;
    }
    let crate::template::Spec::Body(sent) = &d.spec else {
        return None;
    };
    let stack = d
        .client
        .describe_stacks()
        .stack_name(&d.p.stack_name)
        .send()
        .await
        .ok()?
        .stacks?
        .into_iter()
        .next()?;
    if !matches!(
        status_of(&stack).as_str(),
        "CREATE_IN_PROGRESS" | "CREATE_COMPLETE"
    ) {
        return None;
    }
    let id = stack.stack_id?;
    let template = d
        .client
        .get_template()
        .stack_name(&id)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .ok()?
        .template_body?;
    (template == *sent).then_some(id)
}

/// UpdateStack, then wait for it; "no updates" is a success.
pub(crate) async fn update(d: &Deploy<'_>) -> Result<Report> {
    let (client, p) = (&d.client, d.p);
    let id = d
        .existing
        .as_ref()
        .and_then(|s| s.stack_id())
        .unwrap_or(&p.stack_name)
        .to_string();
    let mut events = EventStream::start(client, &id).await;
    let req = common_fields!(client.update_stack(), d)
        .client_request_token(vsts_cfn::request_token("update"));
    match req.send().await {
        Ok(_) => {}
        Err(e) => {
            if let Some(message) = vsts_cfn::no_op_error(&e) {
                d.no_work(&message);
                return Ok(Report::no_changes());
            }
            return Err(e).sdk_context(|| format!("updating stack {}", p.stack_name));
        }
    }
    d.task.console.info(&format!("Updating stack {id}"));
    let stack = wait_for_stack(
        client,
        &d.task.console,
        &id,
        Operation::Update,
        &mut events,
        d.remaining(),
    )
    .await?;
    Ok(Report {
        action: "updated".into(),
        status: stack.as_ref().map(status_of).unwrap_or_default(),
        change_set: None,
    })
}
