//! CloudFormationDeleteStack against moto; a failed deletion (which moto
//! cannot produce) is played by a proxy in front of it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use test_support::{Request, Response, TaskEnv, block_on, faulty_proxy, moto, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cloudformationdeletestack"))
}

fn cfn() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk_config())
}

/// A stack in moto with one queue; returns its id.
fn stack() -> (String, String) {
    let name = unique("stack");
    let id = block_on(async {
        cfn()
            .create_stack()
            .stack_name(&name)
            .template_body("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
            .send()
            .await
            .unwrap()
            .stack_id()
            .unwrap()
            .to_string()
    });
    (name, id)
}

fn status_by_id(id: &str) -> Option<String> {
    block_on(async {
        cfn()
            .describe_stacks()
            .stack_name(id)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.stacks()
                    .first()
                    .and_then(|s| s.stack_status().map(|s| s.as_str().to_string()))
            })
    })
}

#[test]
fn deletes_the_stack_and_waits_for_it() {
    let (name, id) = stack();
    let run = TaskEnv::moto().input("stackName", &name).run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout
            .contains(&format!("Deleting stack {name} ({id})"))
    );
    assert!(run.stdout.contains(&format!("Stack {name} deleted in")));
    let by_name = block_on(async { cfn().describe_stacks().stack_name(&name).send().await });
    assert!(by_name.is_err(), "the stack is gone");
    assert!(
        matches!(status_by_id(&id).as_deref(), None | Some("DELETE_COMPLETE")),
        "{:?}",
        status_by_id(&id)
    );
}

#[test]
fn a_missing_stack_is_a_clear_failure() {
    let name = unique("nothing");
    TaskEnv::moto()
        .input("stackName", &name)
        .run(bin())
        .assert_failed_with(&format!(
            "Stack {name} does not exist in region us-east-1: there is nothing to delete."
        ));
    TaskEnv::moto()
        .input("stackName", &name)
        .input("timeoutInMins", "later")
        .run(bin())
        .assert_failed_with("Input 'timeoutInMins' must be a whole number");
}

fn action(req: &Request) -> String {
    req.body_text()
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string()
}

fn xml(action: &str, result: &str) -> Response {
    Response::new(
        200,
        format!(
            "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
             <{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>t</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
    .header("Content-Type", "text/xml")
}

#[test]
fn a_failed_deletion_names_the_resource_and_why() {
    let (name, id) = stack();
    let deleting = Arc::new(AtomicBool::new(false));
    let flag = deleting.clone();
    let (n, i) = (name.clone(), id.clone());
    let event = |eid: &str, lid: &str, typ: &str, status: &str, reason: &str, t: &str| {
        format!(
            "<member><EventId>{eid}</EventId><StackId>{i}</StackId><StackName>{n}</StackName>\
             <LogicalResourceId>{lid}</LogicalResourceId><PhysicalResourceId>{}</PhysicalResourceId>\
             <ResourceType>{typ}</ResourceType><Timestamp>{t}</Timestamp><ResourceStatus>{status}</ResourceStatus>\
             <ResourceStatusReason>{reason}</ResourceStatusReason></member>",
            if lid == n {
                i.clone()
            } else {
                "logs-bucket-1".to_string()
            }
        )
    };
    // Newest first, as the API returns them.
    let events = [
        event(
            "e4",
            &n,
            "AWS::CloudFormation::Stack",
            "DELETE_FAILED",
            "The following resource(s) failed to delete: [LogsBucket]. ",
            "2026-11-22T07:00:09Z",
        ),
        event(
            "e3",
            "LogsBucket",
            "AWS::S3::Bucket",
            "DELETE_FAILED",
            "The bucket you tried to delete is not empty (Service: S3, Status Code: 409)",
            "2026-11-22T07:00:08Z",
        ),
        event(
            "e2",
            "LogsBucket",
            "AWS::S3::Bucket",
            "DELETE_IN_PROGRESS",
            "",
            "2026-11-22T07:00:02Z",
        ),
        event(
            "e1",
            &n,
            "AWS::CloudFormation::Stack",
            "DELETE_IN_PROGRESS",
            "User Initiated",
            "2026-11-22T07:00:01Z",
        ),
    ]
    .concat();
    let proxy = faulty_proxy(&moto(), move |req| {
        let act = action(req);
        if act == "DeleteStack" {
            // The deletion "fails": moto is not asked.
            flag.store(true, Ordering::SeqCst);
            return Some(xml("DeleteStack", ""));
        }
        if !flag.load(Ordering::SeqCst) {
            return None;
        }
        match act.as_str() {
            "DescribeStacks" => Some(xml(
                "DescribeStacks",
                &format!(
                    "<Stacks><member><StackId>{i}</StackId><StackName>{n}</StackName>\
                     <CreationTime>2026-11-22T06:00:00Z</CreationTime><StackStatus>DELETE_FAILED</StackStatus>\
                     <StackStatusReason>The following resource(s) failed to delete: [LogsBucket].</StackStatusReason>\
                     </member></Stacks>"
                ),
            )),
            "DescribeStackEvents" => Some(xml(
                "DescribeStackEvents",
                &format!("<StackEvents>{events}</StackEvents>"),
            )),
            _ => None,
        }
    });
    let run = TaskEnv::moto()
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("stackName", &name)
        .run(bin());
    run.assert_failed_with(&format!(
        "Stack {name} deletion failed: the stack is DELETE_FAILED"
    ));
    run.assert_failed_with(
        "Root cause: LogsBucket (AWS::S3::Bucket) DELETE_FAILED: The bucket you tried to delete is not empty",
    );
    assert!(
        run.plain()
            .iter()
            .any(|l| l.contains("DELETE_IN_PROGRESS") && l.contains("LogsBucket")),
        "{}",
        run.stdout
    );
}
