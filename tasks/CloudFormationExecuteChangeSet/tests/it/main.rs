//! CloudFormationExecuteChangeSet against moto: change sets made with the
//! SDK, executed by the task, stacks read back.

use std::path::Path;

use aws_sdk_cloudformation::types::ChangeSetType;
use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cloudformationexecutechangeset"))
}

fn cfn() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk_config())
}

const QUEUE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";

/// Creates a change set; returns its ARN.
fn change_set(stack: &str, name: &str, kind: ChangeSetType) -> String {
    change_set_with(stack, name, kind, QUEUE)
}

fn change_set_with(stack: &str, name: &str, kind: ChangeSetType, template: &str) -> String {
    block_on(async {
        cfn()
            .create_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .change_set_type(kind)
            .template_body(template)
            .send()
            .await
            .unwrap()
            .id()
            .unwrap()
            .to_string()
    })
}

fn exists(stack: &str, change_set: &str) -> bool {
    block_on(async {
        cfn()
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .send()
            .await
            .is_ok()
    })
}

fn status(stack: &str) -> String {
    block_on(async {
        cfn()
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .stack_status()
            .unwrap()
            .as_str()
            .to_string()
    })
}

#[test]
fn executes_a_change_set_that_creates_the_stack() {
    let stack = unique("stack");
    change_set(&stack, "initial", ChangeSetType::Create);
    assert_eq!(status(&stack), "REVIEW_IN_PROGRESS");
    let run = TaskEnv::moto()
        .input("stackName", &stack)
        .input("changeSetName", "initial")
        .input("outputVariable", "stackId")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(status(&stack), "CREATE_COMPLETE");
    assert!(
        run.plain()
            .iter()
            .any(|l| l.starts_with(&format!("Change set initial for stack {stack}"))),
        "{}",
        run.stdout
    );
    assert!(
        run.plain()
            .iter()
            .any(|l| l.trim_start().starts_with("Add") && l.contains("Queue")),
        "the plan is shown before it runs:\n{}",
        run.stdout
    );
    assert!(run.variable("stackId").unwrap().contains(&stack));
}

#[test]
fn a_change_set_given_by_arn_needs_no_stack_name() {
    let stack = unique("stack");
    let arn = change_set(&stack, "by-arn", ChangeSetType::Create);
    TaskEnv::moto()
        .input("changeSetName", &arn)
        .run(bin())
        .assert_succeeded();
    assert_eq!(status(&stack), "CREATE_COMPLETE");

    // By name, the stack is needed.
    TaskEnv::moto()
        .input("changeSetName", "by-name")
        .run(bin())
        .assert_failed_with("Input required: stackName");
}

#[test]
fn empty_change_sets_fail_unless_told_otherwise() {
    let stack = unique("stack");
    change_set(&stack, "first", ChangeSetType::Create);
    TaskEnv::moto()
        .input("stackName", &stack)
        .input("changeSetName", "first")
        .run(bin())
        .assert_succeeded();
    // The same template again: CloudFormation fails the change set as empty.
    change_set(&stack, "empty", ChangeSetType::Update);
    let step = || {
        TaskEnv::moto()
            .input("stackName", &stack)
            .input("changeSetName", "empty")
    };
    let run = step().run(bin());
    run.assert_failed_with("Change set empty has no changes to execute");
    run.assert_failed_with("noFailOnEmptyChangeSet");

    let run = step().input("noFailOnEmptyChangeSet", "true").run(bin());
    run.assert_warned("Change set empty has no changes: nothing executed");
    assert!(exists(&stack, "empty"), "kept without deleteEmptyChangeSet");

    let run = step()
        .input("noFailOnEmptyChangeSet", "true")
        .input("deleteEmptyChangeSet", "true")
        .run(bin());
    run.assert_warned("Change set empty has no changes: nothing executed");
    assert!(
        !exists(&stack, "empty"),
        "deleted with deleteEmptyChangeSet"
    );
    assert_eq!(status(&stack), "CREATE_COMPLETE");
}

#[test]
fn missing_and_spent_change_sets_are_clear_failures() {
    let stack = unique("stack");
    TaskEnv::moto()
        .input("stackName", &stack)
        .input("changeSetName", "nope")
        .run(bin())
        .assert_failed_with(&format!(
            "Change set nope does not exist for stack {stack} in region us-east-1."
        ));
    change_set(&stack, "once", ChangeSetType::Create);
    let step = || {
        TaskEnv::moto()
            .input("stackName", &stack)
            .input("changeSetName", "once")
    };
    step().run(bin()).assert_succeeded();
    step()
        .run(bin())
        .assert_failed_with("Change set once cannot be executed: its execution status is EXECUTE_COMPLETE (it was executed already).");
}

#[test]
fn executes_a_change_set_that_updates_an_existing_stack() {
    let stack = unique("stack");
    change_set(&stack, "create", ChangeSetType::Create);
    TaskEnv::moto()
        .input("stackName", &stack)
        .input("changeSetName", "create")
        .run(bin())
        .assert_succeeded();
    let two_queues = format!("{QUEUE}  Second:\n    Type: AWS::SQS::Queue\n");
    change_set_with(&stack, "add-queue", ChangeSetType::Update, &two_queues);
    let run = TaskEnv::moto()
        .input("stackName", &stack)
        .input("changeSetName", "add-queue")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.plain()
            .iter()
            .any(|l| l.trim_start().starts_with("Add") && l.contains("Second")),
        "{}",
        run.stdout
    );
    assert_eq!(status(&stack), "UPDATE_COMPLETE");
    let resources = block_on(async {
        cfn()
            .describe_stack_resources()
            .stack_name(&stack)
            .send()
            .await
            .unwrap()
    });
    let ids: Vec<&str> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| r.logical_resource_id())
        .collect();
    assert!(ids.contains(&"Second"), "{ids:?}");
}
