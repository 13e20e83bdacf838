//! Failures moto cannot produce, played by a proxy in front of it: a create
//! that rolls back (with the recorded events of a real one), a stack
//! left in ROLLBACK_COMPLETE, and a creation slow enough to be cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use test_support::{Request, Response, faulty_proxy, forward_to, moto, unique};

use crate::*;

/// The `Action` of a CloudFormation (query protocol) request.
fn action(req: &Request) -> String {
    req.body_text()
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_response(action: &str, result: &str) -> Response {
    Response::new(
        200,
        format!(
            "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
             <{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>test</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
    .header("Content-Type", "text/xml")
}

fn stack_xml(name: &str, id: &str, status: &str) -> String {
    format!(
        "<Stacks><member><StackId>{id}</StackId><StackName>{name}</StackName>\
         <CreationTime>2026-11-20T10:00:00.000Z</CreationTime><StackStatus>{status}</StackStatus>\
         </member></Stacks>"
    )
}

/// Recorded events (`crates/vsts-cfn/tests/data/<file>`), as
/// DescribeStackEvents returns them (newest first).
fn recorded_events_xml(file: &str) -> String {
    let path = format!(
        "{}/../../crates/vsts-cfn/tests/data/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut xml = String::from("<StackEvents>");
    for e in v["StackEvents"].as_array().unwrap() {
        xml.push_str("<member>");
        for k in [
            "StackId",
            "EventId",
            "StackName",
            "LogicalResourceId",
            "PhysicalResourceId",
            "ResourceType",
            "Timestamp",
            "ResourceStatus",
            "ResourceStatusReason",
        ] {
            if let Some(s) = e[k].as_str() {
                xml.push_str(&format!("<{k}>{}</{k}>", xml_escape(s)));
            }
        }
        xml.push_str("</member>");
    }
    xml.push_str("</StackEvents>");
    xml
}

/// A proxy in front of moto that lets CreateStack through, then reports the
/// stack as `status` and answers DescribeStackEvents with the recorded page
/// `events` picks for the request (None: moto's own events).
fn after_create(
    name: &str,
    status: &'static str,
    events: impl Fn(&Request) -> Option<&'static str> + Send + Sync + 'static,
) -> test_support::HttpServer {
    let created = Arc::new(AtomicBool::new(false));
    let name = name.to_string();
    faulty_proxy(&moto(), move |req| {
        let act = action(req);
        if act == "CreateStack" {
            created.store(true, Ordering::SeqCst);
            return None;
        }
        if !created.load(Ordering::SeqCst) {
            return None;
        }
        match act.as_str() {
            "DescribeStacks" => Some(xml_response(
                "DescribeStacks",
                &stack_xml(
                    &name,
                    "arn:aws:cloudformation:us-east-1:123456789012:stack/x/1",
                    status,
                ),
            )),
            "DescribeStackEvents" => events(req)
                .map(|file| xml_response("DescribeStackEvents", &recorded_events_xml(file))),
            _ => None,
        }
    })
}

#[test]
fn a_failed_create_names_its_root_cause_from_the_stack_events() {
    let name = unique("stack");
    let proxy = after_create(&name, "ROLLBACK_COMPLETE", |_| {
        Some("create-rollback-events.json")
    });
    let d = dir();
    let run = deploy(&name, &d)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("parameterOverrides", "Version=1")
        .run(bin());
    run.assert_failed_with(&format!(
        "Stack {name} creation failed: the stack is ROLLBACK_COMPLETE."
    ));
    run.assert_failed_with(
        "Root cause: AppRole (AWS::IAM::Role) CREATE_FAILED: User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized to perform: iam:CreateRole",
    );
    run.assert_failed_with("Also failed: AssetsBucket (AWS::S3::Bucket) CREATE_FAILED");
    let error = &run.errors()[0];
    assert!(!error.contains("Resource creation cancelled"), "{error}");
    // Every event was printed as it came, oldest first.
    let lines: Vec<&str> = run
        .plain()
        .into_iter()
        .filter(|l| l.starts_with("2026-11-20T10:0"))
        .collect();
    assert_eq!(lines.len(), 13, "{}", run.stdout);
    assert!(lines[0].contains("CREATE_IN_PROGRESS") && lines[0].contains("User Initiated"));
    assert!(lines[12].contains("ROLLBACK_COMPLETE"));
}

#[test]
fn a_stack_left_in_rollback_complete_is_recreated_only_on_request() {
    let name = unique("stack");
    let d = dir();
    // A real stack in moto, which the proxy reports as ROLLBACK_COMPLETE
    // until the task deletes it.
    deploy(&name, &d)
        .input("parameterOverrides", "Version=old")
        .run(bin())
        .assert_succeeded();
    let old_id = stack(&name).unwrap().stack_id().unwrap().to_string();
    let deleted = Arc::new(AtomicBool::new(false));
    let flag = deleted.clone();
    let fake = (name.clone(), old_id.clone());
    let proxy = faulty_proxy(&moto(), move |req| match action(req).as_str() {
        "DeleteStack" => {
            flag.store(true, Ordering::SeqCst);
            None
        }
        "DescribeStacks" if !flag.load(Ordering::SeqCst) => Some(xml_response(
            "DescribeStacks",
            &stack_xml(&fake.0, &fake.1, "ROLLBACK_COMPLETE"),
        )),
        "DescribeStackEvents" if !flag.load(Ordering::SeqCst) => Some(xml_response(
            "DescribeStackEvents",
            &recorded_events_xml("create-rollback-events.json"),
        )),
        _ => None,
    });
    let step = || {
        deploy(&name, &d)
            .set("AWS_ENDPOINT_URL", &proxy.url)
            .input("parameterOverrides", "Version=new")
    };
    let run = step().run(bin());
    run.assert_failed_with("is in ROLLBACK_COMPLETE");
    run.assert_failed_with("recreateRolledBackStack");
    // Why the first creation failed, from the stack's events.
    run.assert_failed_with("Root cause: AppRole (AWS::IAM::Role) CREATE_FAILED");
    assert!(
        !deleted.load(Ordering::SeqCst),
        "nothing deleted without the opt-in"
    );

    let run = step().input("recreateRolledBackStack", "true").run(bin());
    run.assert_warned("deleting it to create it again");
    let s = stack(&name).unwrap();
    assert_ne!(s.stack_id().unwrap(), old_id, "a new stack");
    assert_eq!(output(&s, "Combined").as_deref(), Some("dev:new"));
}

/// A stack that never finishes: the wait ends at timeoutInMins and says
/// what state the stack was left in. (Takes the one minute it waits.)
#[test]
fn a_timeout_says_where_the_stack_was_left() {
    let name = unique("stack");
    let proxy = after_create(&name, "CREATE_IN_PROGRESS", |_| None);
    let d = dir();
    let run = deploy(&name, &d)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("parameterOverrides", "Version=1")
        .input("timeoutInMins", "1")
        .run(bin());
    run.assert_failed_with(&format!(
        "Timed out after 1 minute(s) waiting for the creation of stack {name}"
    ));
    run.assert_failed_with("it is still CREATE_IN_PROGRESS");
    run.assert_failed_with("raise timeoutInMins");
}

/// An operation already running on the stack is waited for, instead of
/// CloudFormation refusing the update.
#[test]
fn an_operation_in_progress_is_waited_for_first() {
    use std::sync::atomic::AtomicUsize;
    let name = unique("stack");
    let d = dir();
    deploy(&name, &d)
        .input("parameterOverrides", "Version=1")
        .run(bin())
        .assert_succeeded();
    let id = stack(&name).unwrap().stack_id().unwrap().to_string();
    let busy = Arc::new(AtomicUsize::new(2));
    let left = busy.clone();
    let fake = (name.clone(), id);
    let proxy = faulty_proxy(&moto(), move |req| {
        let act = action(req);
        let take = || {
            left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        (act == "DescribeStacks" && take()).then(|| {
            xml_response(
                "DescribeStacks",
                &stack_xml(&fake.0, &fake.1, "UPDATE_IN_PROGRESS"),
            )
        })
    });
    let run = deploy(&name, &d)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("parameterOverrides", "Version=2")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout.contains(&format!(
            "Stack {name} is UPDATE_IN_PROGRESS: waiting for that operation to finish first"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(busy.load(Ordering::SeqCst), 0);
    assert_eq!(
        output(&stack(&name).unwrap(), "Combined").as_deref(),
        Some("dev:2")
    );
}

/// A nested stack that failed: the error names the resource inside it, not
/// the nested stack's "Embedded stack ... was not successfully created".
#[test]
fn a_failure_inside_a_nested_stack_is_named() {
    let name = unique("stack");
    let proxy = after_create(&name, "ROLLBACK_COMPLETE", |req| {
        Some(if req.body_text().contains("shop-Network-7XK2Q") {
            "nested-child-events.json"
        } else {
            "nested-parent-events.json"
        })
    });
    let d = dir();
    let run = deploy(&name, &d)
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("parameterOverrides", "Version=1")
        .run(bin());
    run.assert_failed_with(
        "Root cause: Network/PublicSubnet (AWS::EC2::Subnet) CREATE_FAILED: Resource handler returned message: \"The CIDR '10.0.300.0/24' is invalid.",
    );
    let error = &run.errors()[0];
    assert!(!error.contains("Embedded stack"), "{error}");
    assert!(
        !error.contains("Also failed"),
        "the cancelled queue is not a cause: {error}"
    );
    // The nested stack's events were followed live, named by their path.
    let nested: Vec<&str> = run
        .plain()
        .into_iter()
        .filter(|l| l.contains("Network/"))
        .collect();
    assert!(
        nested
            .iter()
            .any(|l| l.contains("CREATE_COMPLETE") && l.contains("Network/Vpc")),
        "{}",
        run.stdout
    );
    assert!(
        nested
            .iter()
            .any(|l| l.contains("CREATE_FAILED") && l.contains("Network/PublicSubnet")),
        "{}",
        run.stdout
    );
    assert!(
        !run.plain()
            .iter()
            .any(|l| l.contains("shop-Network-7XK2Q  User Initiated")),
        "the nested stack's own events are not repeated: {}",
        run.stdout
    );
}

/// The agent cancelling the step while CloudFormation is still creating
/// the stack: the task stops at once and says that the creation goes on in
/// AWS (cancelling a pipeline does not stop it).
#[test]
fn a_cancelled_wait_says_the_creation_goes_on_in_aws() {
    let name = unique("cancel");
    let d = dir();
    let upstream = moto();
    // moto creates a stack at once: the proxy shows it still being created.
    let proxy = faulty_proxy(&upstream.clone(), move |req| {
        (action(req) == "DescribeStacks").then(|| {
            let mut real = forward_to(&upstream, req);
            real.body = String::from_utf8_lossy(&real.body)
                .replace("CREATE_COMPLETE", "CREATE_IN_PROGRESS")
                .into_bytes();
            real
        })
    });
    let waiting = || {
        let actions: Vec<String> = proxy.requests().iter().map(action).collect();
        actions
            .iter()
            .skip_while(|a| *a != "CreateStack")
            .any(|a| a == "DescribeStacks")
    };
    let task = deploy(&name, &d)
        .input("parameterOverrides", "Version=1")
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .spawn(bin())
        .after("the wait for the stack", waiting);
    // The answer to that DescribeStacks reaches the task.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let cancelled = std::time::Instant::now();
    task.cancel();
    let run = task.wait();
    assert!(
        cancelled.elapsed() < std::time::Duration::from_secs(4),
        "the task took {:?} to stop",
        cancelled.elapsed()
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    run.assert_failed_with(&format!(
        "Cancelled (SIGTERM) while waiting for the creation of stack {name}: \
         CloudFormation goes on with it in AWS (the stack was CREATE_IN_PROGRESS); \
         follow it in the CloudFormation console."
    ));
    // And it did go on: the stack is there.
    assert_eq!(stack(&name).as_ref().map(status), Some("CREATE_COMPLETE"));
}

/// Every call that starts work in CloudFormation carries a token, so that
/// the SDK retrying it after the network lost the answer does not start the
/// work twice (a second change set, a second update).
#[test]
fn calls_that_start_work_carry_an_idempotency_token() {
    let proxy = test_support::recording_proxy(&moto());
    let token = |action_name: &str, field: &str| {
        let req = proxy
            .requests()
            .into_iter()
            .find(|r| action(r) == action_name)
            .unwrap_or_else(|| panic!("no {action_name} request"));
        req.body_text()
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{field}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("{action_name} has no {field}: {}", req.body_text()))
    };
    let d = dir();
    deploy(&unique("direct"), &d)
        .input("parameterOverrides", "Version=1")
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .run(bin())
        .assert_succeeded();
    assert!(token("CreateStack", "ClientRequestToken").starts_with("aws-pipeline-tasks-create-"));
    deploy(&unique("planned"), &d)
        .input("parameterOverrides", "Version=1")
        .input("useChangeSet", "true")
        .input("changeSetName", "first")
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .run(bin())
        .assert_succeeded();
    assert!(token("CreateChangeSet", "ClientToken").starts_with("aws-pipeline-tasks-changeset-"));
    assert!(
        token("ExecuteChangeSet", "ClientRequestToken").starts_with("aws-pipeline-tasks-execute-")
    );
}
