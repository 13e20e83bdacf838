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
    let out = req
        .send()
        .await
        .sdk_context(|| format!("creating stack {}", p.stack_name))?;
    let id = out.stack_id().unwrap_or(&p.stack_name).to_string();
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
