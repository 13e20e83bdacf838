//! SystemsManagerRunCommand: what moto serves (SendCommand, ListCommands,
//! tag targets resolved through its EC2) is read back from moto; the
//! states of a running command that moto cannot produce (it finishes every
//! command at once and has no ListCommandInvocations) come from a stub SSM
//! endpoint that answers in the service's JSON protocol.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use test_support::{HttpServer, Response, TaskEnv, TaskRun, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_systemsmanagerruncommand"))
}

fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config())
}

fn command(id: &str) -> aws_sdk_ssm::types::Command {
    block_on(ssm().list_commands().command_id(id).send())
        .unwrap()
        .commands
        .unwrap()
        .remove(0)
}

fn command_id(run: &TaskRun, variable: &str) -> String {
    run.variable(variable)
        .unwrap_or_else(|| panic!("{variable} not set:\n{}", run.stdout))
}

#[test]
fn the_document_goes_to_the_instances_with_every_setting() {
    let comment = unique("deploy");
    let run = TaskEnv::moto()
        .input("documentName", "AWS-RunShellScript")
        .input(
            "documentParameters",
            r#"{ "commands": ["echo hello", "uptime"], "executionTimeout": 120 }"#,
        )
        .input("comment", &comment)
        .input("instanceSelector", "fromInstanceIds")
        .input(
            "instanceIds",
            "i-0123456789abcdef0\r\ni-0fedcba9876543210\r\n",
        )
        .input("maxConcurrency", "10%")
        .input("maxErrors", "1")
        .input("timeout", "300")
        .input("notificationArn", "arn:aws:sns:us-east-1:123456789012:ops")
        .input("notificationType", "Invocation")
        .input("notificationEvents", "Failed")
        .input(
            "serviceRoleARN",
            "arn:aws:iam::123456789012:role/ssm-notify",
        )
        .input("outputS3BucketName", "command-output")
        .input("outputS3KeyPrefix", "runs/42")
        .input("commandIdOutputVariable", "commandId")
        .run(bin());
    run.assert_succeeded();
    let id = command_id(&run, "commandId");
    assert!(
        run.stdout.contains(&format!(
            "Successfully invoked command AWS-RunShellScript, unique command ID returned by the service was {id}."
        )),
        "{}",
        run.stdout
    );
    let c = command(&id);
    assert_eq!(c.document_name(), Some("AWS-RunShellScript"));
    assert_eq!(c.comment(), Some(comment.as_str()));
    let mut ids = c.instance_ids().to_vec();
    ids.sort();
    assert_eq!(ids, ["i-0123456789abcdef0", "i-0fedcba9876543210"]);
    let params = c.parameters().unwrap();
    assert_eq!(params["commands"], ["echo hello", "uptime"]);
    assert_eq!(params["executionTimeout"], ["120"]);
    assert_eq!(c.max_concurrency(), Some("10%"));
    assert_eq!(c.max_errors(), Some("1"));
    assert_eq!(c.timeout_seconds(), Some(300));
    assert_eq!(c.output_s3_bucket_name(), Some("command-output"));
    assert_eq!(c.output_s3_key_prefix(), Some("runs/42"));
    assert_eq!(
        c.service_role(),
        Some("arn:aws:iam::123456789012:role/ssm-notify")
    );
    let n = c.notification_config().unwrap();
    assert_eq!(
        n.notification_arn(),
        Some("arn:aws:sns:us-east-1:123456789012:ops")
    );
    assert_eq!(
        n.notification_type().map(|t| t.as_str()),
        Some("Invocation")
    );
    assert_eq!(
        n.notification_events()
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>(),
        ["Failed"]
    );
}

#[test]
fn targets_by_tags_and_from_a_pipeline_variable() {
    let run = TaskEnv::moto()
        .input("documentName", "AWS-RunShellScript")
        .input("instanceSelector", "fromTags")
        .input("instanceTags", "Role=web\nStage = blue,green")
        .input("commandIdOutputVariable", "commandId")
        .run(bin());
    run.assert_succeeded();
    let c = command(&command_id(&run, "commandId"));
    let targets: Vec<(String, Vec<String>)> = c
        .targets()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.values().to_vec()))
        .collect();
    assert_eq!(
        targets,
        [
            ("tag:Role".to_string(), vec!["web".to_string()]),
            (
                "tag:Stage".to_string(),
                vec!["blue".to_string(), "green".to_string()]
            )
        ]
    );

    let from_variable = TaskEnv::moto()
        .input("documentName", "AWS-RunShellScript")
        .input("instanceSelector", "fromBuildVariable")
        .input("instanceBuildVariable", "Fleet.InstanceIds")
        .input("commandIdOutputVariable", "commandId");
    let run = from_variable
        .clone()
        .variable(
            "Fleet.InstanceIds",
            "i-0aaaaaaaaaaaaaaaa, i-0bbbbbbbbbbbbbbbb",
        )
        .run(bin());
    run.assert_succeeded();
    let mut ids = command(&command_id(&run, "commandId"))
        .instance_ids()
        .to_vec();
    ids.sort();
    assert_eq!(ids, ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"]);

    // A missing variable fails naming it, and nothing is sent (the other
    // tests share moto: only a command with this run's comment counts).
    let comment = unique("no-variable");
    let run = from_variable.input("comment", &comment).run(bin());
    run.assert_failed_with(
        "Failed to retrieve list of instance IDs from build variable Fleet.InstanceIds",
    );
    assert!(run.variable("commandId").is_none());
    let sent = block_on(ssm().list_commands().send())
        .unwrap()
        .commands
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.comment() == Some(comment.as_str()))
        .count();
    assert_eq!(sent, 0, "a command was sent");
}

#[test]
fn bad_parameters_fail_before_anything_is_sent() {
    let run = TaskEnv::moto()
        .input("documentName", "AWS-RunShellScript")
        .input("documentParameters", "commands: [ls]")
        .input("instanceIds", "i-0123456789abcdef0")
        .input("commandIdOutputVariable", "commandId")
        .run(bin());
    run.assert_failed_with("Input 'documentParameters' is not valid JSON");
    assert!(run.variable("commandId").is_none());
}

/// moto finishes every command at once but cannot list its invocations:
/// the wait sees the command's Success and succeeds, with a warning (in
/// the run summary) that it cannot show each instance.
#[test]
fn waiting_on_moto_sees_the_command_succeed() {
    let run = TaskEnv::moto()
        .input("documentName", "AWS-RunShellScript")
        .input("documentParameters", r#"{"commands": ["true"]}"#)
        .input("instanceIds", "i-0123456789abcdef0")
        .input("waitForCompletion", "true")
        .input("waitTimeoutSeconds", "60")
        .input("commandIdOutputVariable", "commandId")
        .run(bin());
    assert_eq!(
        run.result().as_deref(),
        Some("SucceededWithIssues"),
        "{}",
        run.stdout
    );
    run.assert_warned(
        "The results of each instance could not be read (ssm:ListCommandInvocations)",
    );
    let id = command_id(&run, "commandId");
    assert!(
        run.stdout.contains(&format!("Command {id}: ")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("Command {id} (AWS-RunShellScript) succeeded")),
        "{}",
        run.stdout
    );
}

/// A stub SSM: SendCommand answers `c-1`; ListCommands walks through
/// `states` (the last one repeats); ListCommandInvocations answers
/// `invocations`; CancelCommand is recorded.
struct Stub {
    server: HttpServer,
}

impl Stub {
    fn start(states: Vec<serde_json::Value>, invocations: serde_json::Value) -> Self {
        let polls = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(Mutex::new(false));
        let server = HttpServer::start(move |req| {
            let target = req.header("x-amz-target").unwrap_or("");
            let body = match target.trim_start_matches("AmazonSSM.") {
                "SendCommand" => {
                    serde_json::json!({"Command": {"CommandId": "c-1", "Status": "Pending"}})
                }
                "ListCommands" => {
                    let n = polls.fetch_add(1, Ordering::SeqCst);
                    let state = if *cancelled.lock().unwrap() {
                        serde_json::json!({"Status": "Cancelled", "StatusDetails": "Cancelled"})
                    } else {
                        states[n.min(states.len() - 1)].clone()
                    };
                    let mut c = serde_json::json!({"CommandId": "c-1", "TargetCount": 2});
                    c.as_object_mut()
                        .unwrap()
                        .extend(state.as_object().unwrap().clone());
                    serde_json::json!({"Commands": [c]})
                }
                "ListCommandInvocations" => invocations.clone(),
                "CancelCommand" => {
                    *cancelled.lock().unwrap() = true;
                    serde_json::json!({})
                }
                other => {
                    return Response::new(
                        400,
                        format!(r#"{{"__type":"UnknownOperation","message":"{other}"}}"#),
                    )
                    .header("Content-Type", "application/x-amz-json-1.1");
                }
            };
            Response::new(200, body.to_string())
                .header("Content-Type", "application/x-amz-json-1.1")
        });
        Stub { server }
    }

    fn env(&self) -> TaskEnv {
        TaskEnv::moto()
            .set("AWS_ENDPOINT_URL", &self.server.url)
            .input("documentName", "AWS-RunShellScript")
            .input("instanceIds", "i-0aaaaaaaaaaaaaaaa\ni-0bbbbbbbbbbbbbbbb")
            .input("waitForCompletion", "true")
    }

    fn calls(&self, op: &str) -> usize {
        let target = format!("AmazonSSM.{op}");
        self.server
            .requests()
            .iter()
            .filter(|r| r.header("x-amz-target") == Some(target.as_str()))
            .count()
    }
}

fn invocation(
    instance: &str,
    status: &str,
    details: &str,
    code: i32,
    output: &str,
) -> serde_json::Value {
    serde_json::json!({
        "CommandId": "c-1",
        "InstanceId": instance,
        "Status": status,
        "StatusDetails": details,
        "CommandPlugins": [{"Name": "aws:runShellScript", "Status": status, "ResponseCode": code, "Output": output}]
    })
}

#[test]
fn a_failed_instance_fails_the_task_with_its_exit_code_and_output() {
    let stub = Stub::start(
        vec![
            serde_json::json!({"Status": "Pending", "StatusDetails": "Pending"}),
            serde_json::json!({"Status": "InProgress", "StatusDetails": "InProgress", "CompletedCount": 1}),
            serde_json::json!({"Status": "Failed", "StatusDetails": "Failed", "CompletedCount": 2, "ErrorCount": 1}),
        ],
        serde_json::json!({"CommandInvocations": [
            invocation("i-0bbbbbbbbbbbbbbbb", "Failed", "Failed", 2, "migrating...\nboom: disk full"),
            invocation("i-0aaaaaaaaaaaaaaaa", "Success", "Success", 0, "migrated 12 tables"),
        ]}),
    );
    let run = stub.env().run(bin());
    run.assert_failed_with(
        "Command c-1 (AWS-RunShellScript) ended Failed: i-0bbbbbbbbbbbbbbbb Failed, exit code 2.",
    );
    let out = &run.stdout;
    // Progress as it changed, then each instance's output in a group,
    // instances in order.
    let pending = out
        .find("Command c-1: Pending, 0 of 2 instance(s) done")
        .unwrap();
    let progress = out
        .find("Command c-1: InProgress, 1 of 2 instance(s) done, 0 failed")
        .unwrap();
    let a = out
        .find("##[group]i-0aaaaaaaaaaaaaaaa: Success, exit code 0")
        .unwrap();
    let a_out = out.find("migrated 12 tables").unwrap();
    let b = out
        .find("##[group]i-0bbbbbbbbbbbbbbbb: Failed, exit code 2")
        .unwrap();
    let b_out = out.find("boom: disk full").unwrap();
    assert!(
        pending < progress && progress < a && a < a_out && a_out < b && b < b_out,
        "{out}"
    );
    assert!(
        run.errors()
            .iter()
            .any(|e| e.starts_with("i-0bbbbbbbbbbbbbbbb: Failed, exit code 2")),
        "{:?}",
        run.errors()
    );
    assert!(stub.calls("ListCommands") >= 3);
    assert_eq!(stub.calls("CancelCommand"), 0);
}

#[test]
fn an_instance_not_reached_fails_the_task() {
    let stub = Stub::start(
        vec![
            serde_json::json!({"Status": "Success", "StatusDetails": "Success", "CompletedCount": 2, "DeliveryTimedOutCount": 1}),
        ],
        serde_json::json!({"CommandInvocations": [
            invocation("i-0aaaaaaaaaaaaaaaa", "Success", "Success", 0, "ok"),
            invocation("i-0bbbbbbbbbbbbbbbb", "TimedOut", "Delivery Timed Out", -1, ""),
        ]}),
    );
    let run = stub.env().run(bin());
    run.assert_failed_with("i-0bbbbbbbbbbbbbbbb Delivery Timed Out");
}

#[test]
fn every_instance_succeeding_is_a_success_with_their_output() {
    let stub = Stub::start(
        vec![
            serde_json::json!({"Status": "InProgress", "StatusDetails": "InProgress"}),
            serde_json::json!({"Status": "Success", "StatusDetails": "Success", "CompletedCount": 2}),
        ],
        serde_json::json!({"CommandInvocations": [
            invocation("i-0aaaaaaaaaaaaaaaa", "Success", "Success", 0, "node a ready"),
            invocation("i-0bbbbbbbbbbbbbbbb", "Success", "Success", 0, "node b ready"),
        ]}),
    );
    let run = stub.env().run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("node a ready") && run.stdout.contains("node b ready"));
    assert!(
        run.stdout
            .contains("Command c-1 (AWS-RunShellScript) succeeded on 2 instance(s)."),
        "{}",
        run.stdout
    );
}

#[test]
fn a_wait_that_runs_out_cancels_the_command() {
    let stub = Stub::start(
        vec![serde_json::json!({"Status": "InProgress", "StatusDetails": "InProgress"})],
        serde_json::json!({"CommandInvocations": []}),
    );
    let run = stub.env().input("waitTimeoutSeconds", "2").run(bin());
    run.assert_failed_with("Command c-1 did not finish within 2 s (input 'waitTimeoutSeconds'); the command was cancelled");
    assert_eq!(stub.calls("CancelCommand"), 1);
}

#[test]
fn cancelling_the_step_cancels_the_command() {
    let stub = Stub::start(
        vec![serde_json::json!({"Status": "InProgress", "StatusDetails": "InProgress"})],
        serde_json::json!({"CommandInvocations": []}),
    );
    let running = stub
        .env()
        .spawn(bin())
        .after("the wait started", || stub.calls("ListCommands") > 0);
    running.cancel();
    let run = running.wait();
    run.assert_failed_with("while command c-1 ran; the command was cancelled");
    assert_eq!(stub.calls("CancelCommand"), 1);
}
