//! CloudFormationCreateOrUpdateStack against moto: stacks are read back
//! with DescribeStacks. Failures with resource events, which moto cannot
//! produce (it reports stack-level events only), come from recorded
//! DescribeStackEvents pages served by a proxy in front of moto.

mod failures;

use std::path::{Path, PathBuf};

use aws_sdk_cloudformation::types::Stack;
use test_support::{TaskEnv, assert_no_leaks, block_on, sdk_config, unique};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cloudformationcreateorupdatestack"))
}

/// A template moto deploys: one SSM parameter whose value is built from
/// the stack parameters, and outputs that show them.
pub const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Env:
    Type: String
    Default: dev
  Version:
    Type: String
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/${AWS::StackName}/setting'
      Type: String
      Value: !Sub '${Env}-${Version}'
Outputs:
  Combined:
    Value: !Sub '${Env}:${Version}'
  SettingName:
    Value: !Ref Setting
"#;

pub fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(unique("cfn"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A stack deployment step with the template in a file.
pub fn deploy(stack: &str, dir: &Path) -> TaskEnv {
    let template = write(dir, "template.yml", TEMPLATE);
    TaskEnv::moto()
        .input("stackName", stack)
        .input("templateSource", "file")
        .input("templateFile", template.to_str().unwrap())
        // As the agent passes an empty filePath input: the sources folder.
        .set("BUILD_SOURCESDIRECTORY", dir.to_str().unwrap())
        .input("templateParametersFile", dir.to_str().unwrap())
}

pub fn cfn() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk_config())
}

/// Path-style, as moto's TemplateURL resolution wants.
fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config())
            .force_path_style(true)
            .build(),
    )
}

pub fn stack(name: &str) -> Option<Stack> {
    block_on(async {
        cfn()
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stacks().first().cloned())
    })
}

pub fn status(s: &Stack) -> &str {
    s.stack_status().unwrap().as_str()
}

pub fn param(s: &Stack, key: &str) -> Option<String> {
    s.parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(key))
        .and_then(|p| p.parameter_value().map(str::to_string))
}

pub fn output(s: &Stack, key: &str) -> Option<String> {
    s.outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value().map(str::to_string))
}

/// The value of the SSM parameter the template creates: what the stack's
/// resources really got (moto keeps no outputs for stacks made by change sets).
pub fn setting(stack: &str) -> Option<String> {
    block_on(async {
        aws_sdk_ssm::Client::new(&sdk_config())
            .get_parameter()
            .name(format!("/{stack}/setting"))
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter().and_then(|p| p.value().map(str::to_string)))
    })
}

#[test]
fn creates_then_updates_then_reports_nothing_to_do() {
    let name = unique("stack");
    let d = dir();
    let params = write(
        &d,
        "params.json",
        r#"[{"ParameterKey": "Env", "ParameterValue": "prod"},
            {"ParameterKey": "Version", "ParameterValue": "1"}]"#,
    );
    let run = deploy(&name, &d)
        .input("templateParametersFile", params.to_str().unwrap())
        .input("outputVariable", "stackId")
        .run(bin());
    run.assert_succeeded();
    let s = stack(&name).expect("the stack exists");
    assert_eq!(status(&s), "CREATE_COMPLETE");
    assert_eq!(output(&s, "Combined").as_deref(), Some("prod:1"));
    assert_eq!(run.variable("stackId").as_deref(), s.stack_id());
    assert_eq!(run.variable_is_secret("stackId"), Some(false));
    assert!(
        run.stdout
            .contains(&format!("Stack {name} does not exist: creating it"))
    );
    assert!(
        run.plain()
            .iter()
            .any(|l| l.contains("CREATE_COMPLETE") && l.contains("AWS::CloudFormation::Stack")),
        "stack events are streamed:\n{}",
        run.stdout
    );

    // Update: an override on top of the file.
    let run = deploy(&name, &d)
        .input("templateParametersFile", params.to_str().unwrap())
        .input("parameterOverrides", "Version=2")
        .run(bin());
    run.assert_succeeded();
    let s = stack(&name).unwrap();
    assert_eq!(status(&s), "UPDATE_COMPLETE");
    assert_eq!(output(&s, "Combined").as_deref(), Some("prod:2"));
    assert!(
        run.stdout.contains("Version (parameterOverrides)"),
        "{}",
        run.stdout
    );

    // The same again: nothing to do is a success, with a warning.
    let run = deploy(&name, &d)
        .input("templateParametersFile", params.to_str().unwrap())
        .input("parameterOverrides", "Version=2")
        .run(bin());
    run.assert_warned(
        "already up to date: CloudFormation reports no changes to make (No updates are to be performed",
    );
    // warnWhenNoWorkNeeded=false: an info line, a clean success.
    let run = deploy(&name, &d)
        .input("templateParametersFile", params.to_str().unwrap())
        .input("parameterOverrides", "Version=2")
        .input("warnWhenNoWorkNeeded", "false")
        .run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("already up to date"));
}

#[test]
fn parameters_not_given_keep_their_current_values() {
    let name = unique("stack");
    let d = dir();
    deploy(&name, &d)
        .input("templateParametersSource", "inline")
        .input("templateParameters", "Env: staging\nVersion: '7'\n")
        .run(bin())
        .assert_succeeded();
    // Only Version given: Env stays "staging" instead of its default "dev".
    let run = deploy(&name, &d)
        .input("templateParametersSource", "inline")
        .input("templateParameters", "Version: 8")
        .run(bin());
    run.assert_succeeded();
    let s = stack(&name).unwrap();
    assert_eq!(output(&s, "Combined").as_deref(), Some("staging:8"));
    assert!(run.stdout.contains("current values kept"), "{}", run.stdout);
    // Turned off: the default comes back.
    deploy(&name, &d)
        .input("templateParametersSource", "inline")
        .input("templateParameters", "Version: 9")
        .input("usePreviousParameterValues", "false")
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        output(&stack(&name).unwrap(), "Combined").as_deref(),
        Some("dev:9")
    );
}

#[test]
fn change_set_create_update_and_empty_change_set() {
    let name = unique("stack");
    let d = dir();
    let params = write(&d, "params.yaml", "Parameters:\n  Env: qa\n  Version: 1\n");
    let run = deploy(&name, &d)
        .input("templateParametersFile", params.to_str().unwrap())
        .input("useChangeSet", "true")
        .input("changeSetName", "first")
        .input("description", "first deployment")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout.contains("Creating change set first (CREATE)"),
        "{}",
        run.stdout
    );
    assert!(
        run.plain()
            .iter()
            .any(|l| l.starts_with("Change set first for stack")),
        "preview:\n{}",
        run.stdout
    );
    let s = stack(&name).unwrap();
    assert_eq!(status(&s), "CREATE_COMPLETE");
    assert_eq!(setting(&name).as_deref(), Some("qa-1"));

    // moto re-evaluates only resources whose definition changed: the update
    // changes the resource too.
    let changed = write(
        &d,
        "changed.yml",
        &TEMPLATE.replace(
            "      Type: String\n      Value",
            "      Description: second\n      Type: String\n      Value",
        ),
    );
    let step = || {
        deploy(&name, &d)
            .input("templateFile", changed.to_str().unwrap())
            .input("templateParametersFile", params.to_str().unwrap())
            .input("parameterOverrides", "Version=2")
            .input("useChangeSet", "true")
    };
    let run = step().input("changeSetName", "second").run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("Creating change set second (UPDATE)"));
    assert!(
        run.plain()
            .iter()
            .any(|l| l.trim_start().starts_with("Modify")
                && l.contains("Setting")
                && l.contains("AWS::SSM::Parameter")),
        "the preview names the change:\n{}",
        run.stdout
    );
    assert_eq!(setting(&name).as_deref(), Some("qa-2"));

    // Nothing changes: success with a warning, and the failed change set
    // is not left behind.
    // (moto refuses this change set at once: "No updates are to be performed.")
    let run = step().input("changeSetName", "third").run(bin());
    run.assert_warned("already up to date");
}

/// A change set CloudFormation creates and then fails because nothing
/// changes: success, and the failed change set is not left behind.
#[test]
fn an_empty_change_set_is_a_success_and_is_deleted() {
    let name = unique("stack");
    let d = dir();
    let plain = write(
        &d,
        "plain.yml",
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n",
    );
    let step = |cs: &str| {
        TaskEnv::moto()
            .input("stackName", &name)
            .input("templateFile", plain.to_str().unwrap())
            .input("useChangeSet", "true")
            .input("changeSetName", cs)
    };
    step("one").run(bin()).assert_succeeded();
    let run = step("two").run(bin());
    run.assert_warned("didn't contain changes");
    let sets = block_on(async {
        cfn()
            .list_change_sets()
            .stack_name(&name)
            .send()
            .await
            .unwrap()
    });
    assert!(
        sets.summaries()
            .iter()
            .all(|s| s.change_set_name() != Some("two")),
        "the empty change set was deleted"
    );
    assert_eq!(status(&stack(&name).unwrap()), "CREATE_COMPLETE");
}

#[test]
fn change_set_without_execution_leaves_the_plan_for_review() {
    let name = unique("stack");
    let d = dir();
    let run = deploy(&name, &d)
        .input("templateParameters", "")
        .input("parameterOverrides", "Version=1")
        .input("useChangeSet", "true")
        .input("changeSetName", "review-me")
        .input("autoExecuteChangeSet", "false")
        .input("outputVariable", "stackId")
        .run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("was not executed"), "{}", run.stdout);
    let s = stack(&name).unwrap();
    assert_eq!(status(&s), "REVIEW_IN_PROGRESS");
    let set = block_on(async {
        cfn()
            .describe_change_set()
            .change_set_name("review-me")
            .stack_name(&name)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(set.execution_status().unwrap().as_str(), "AVAILABLE");
    assert_eq!(run.variable("stackId").as_deref(), s.stack_id());
}

#[test]
fn outputs_as_secret_variables_and_as_json() {
    let name = unique("stack");
    let d = dir();
    let run = deploy(&name, &d)
        .input("parameterOverrides", "Version=3\nEnv=a;b]c%")
        .input("captureStackOutputs", "asVariables")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(run.variable("Combined").as_deref(), Some("a;b]c%:3"));
    assert_eq!(run.variable_is_secret("Combined"), Some(true));
    assert!(run.registered_secrets().contains(&"a;b]c%:3".to_string()));
    assert_no_leaks(&run, &["a;b]c%:3"]);

    let run = deploy(&name, &d)
        .input("parameterOverrides", "Version=4\nEnv=json")
        .input("captureStackOutputs", "asJSON")
        .input("captureAsSecuredVars", "false")
        .run(bin());
    run.assert_succeeded();
    let outputs = format!("{name}Outputs");
    let json = run.variable(&outputs).expect("the JSON variable");
    assert_eq!(run.variable_is_secret(&outputs), Some(false));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let combined = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["OutputKey"] == "Combined")
        .unwrap();
    assert_eq!(combined["OutputValue"], "json:4");
}

#[test]
fn no_echo_parameter_values_are_registered_kept_and_never_printed() {
    let name = unique("stack");
    let d = dir();
    let template = TEMPLATE.replace(
        "Resources:",
        "  DbPassword:\n    Type: String\n    NoEcho: true\nResources:",
    );
    let file = write(&d, "noecho.yml", &template);
    let step = || deploy(&name, &d).input("templateFile", file.to_str().unwrap());
    let run = step()
        .input("parameterOverrides", "Version=1\nDbPassword=s3cr3t-db-pass")
        .input("logRequest", "true")
        .input("logResponse", "true")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.registered_secrets()
            .contains(&"s3cr3t-db-pass".to_string())
    );
    assert_no_leaks(&run, &["s3cr3t-db-pass", "testing"]);
    assert_eq!(
        param(&stack(&name).unwrap(), "DbPassword").as_deref(),
        Some("s3cr3t-db-pass")
    );

    // Not given on update: the password is kept, not reset.
    let run = step().input("parameterOverrides", "Version=2").run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout.contains("DbPassword (current values kept)"),
        "{}",
        run.stdout
    );
    let s = stack(&name).unwrap();
    assert_eq!(param(&s, "DbPassword").as_deref(), Some("s3cr3t-db-pass"));
    assert_eq!(output(&s, "Combined").as_deref(), Some("dev:2"));
}

#[test]
fn template_from_s3_and_a_local_template_uploaded_first() {
    // moto resolves TemplateURLs only for path-style "localhost" URLs.
    let endpoint = test_support::moto().replace("127.0.0.1", "localhost");
    let bucket = unique("templates");
    block_on(async {
        let s3 = s3();
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key("in/s3.yml")
            .body(TEMPLATE.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let name = unique("stack");
    let d = dir();
    let run = TaskEnv::moto()
        .set("AWS_ENDPOINT_URL", &endpoint)
        .input("stackName", &name)
        .input("templateSource", "s3")
        .input("s3BucketName", &bucket)
        .input("s3ObjectKey", "in/s3.yml")
        .input("parameterOverrides", "Version=s3")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        output(&stack(&name).unwrap(), "Combined").as_deref(),
        Some("dev:s3")
    );
    assert!(
        run.stdout
            .contains(&format!("Template: s3://{bucket}/in/s3.yml"))
    );
    assert!(
        !run.stdout.contains("X-Amz-Signature"),
        "the presigned URL is never printed"
    );

    let name = unique("stack");
    let run = deploy(&name, &d)
        .set("AWS_ENDPOINT_URL", &endpoint)
        .input("s3BucketName", &bucket)
        .input("parameterOverrides", "Version=uploaded")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        output(&stack(&name).unwrap(), "Combined").as_deref(),
        Some("dev:uploaded")
    );
    let uploaded = block_on(async {
        s3().head_object()
            .bucket(&bucket)
            .key("template.yml")
            .send()
            .await
    });
    assert!(
        uploaded.is_ok(),
        "the template was uploaded as template.yml"
    );
}

#[test]
fn use_previous_template_updates_parameters_only() {
    let name = unique("stack");
    let d = dir();
    deploy(&name, &d)
        .input("parameterOverrides", "Version=1")
        .run(bin())
        .assert_succeeded();
    let run = TaskEnv::moto()
        .input("stackName", &name)
        .input("templateSource", "usePrevious")
        .input("parameterOverrides", "Version=prev")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        output(&stack(&name).unwrap(), "Combined").as_deref(),
        Some("dev:prev")
    );
}

#[test]
fn bad_input_fails_before_any_change() {
    let d = dir();
    let bad_params = write(
        &d,
        "bad.json",
        "[\n  {\"ParameterKey\": \"Env\", \"ParameterValue\": \"x\"},\n  {\"ParameterKey\": \"Version\" \"ParameterValue\": \"1\"}\n]\n",
    );
    let typo = write(&d, "typo.yml", "- ParameterKey: Env\n  ParameterVaule: x\n");
    // A YAML parser ends the document at NUL: this was read as "Env: x" only.
    // Not "nul.yml": on Windows that name is the NUL device.
    let nul = write(&d, "has-nul.yml", "Env: x\n\0Version: 1\n");
    let binary = d.join("binary.json");
    std::fs::write(&binary, [0x00, 0x01, 0xfe, 0xff, 0x10]).unwrap();
    let big = write(
        &d,
        "big.yml",
        &format!("{TEMPLATE}\n#{}\n", "x".repeat(60_000)),
    );
    let name = unique("stack");
    let cases: Vec<(TaskEnv, String)> = vec![
        (
            deploy(&name, &d).input("templateFile", "/nonexistent/template.yml"),
            "Input 'templateFile': the file '/nonexistent/template.yml' does not exist".into(),
        ),
        (
            deploy(&name, &d).input("templateParametersFile", bad_params.to_str().unwrap()),
            format!(
                "templateParametersFile '{}' is neither valid JSON nor valid YAML",
                test_support::platform::task_path(&bad_params)
            ),
        ),
        (
            deploy(&name, &d).input("templateParametersFile", typo.to_str().unwrap()),
            format!(
                "templateParametersFile '{}', line 2: entry 1 has an unknown field 'ParameterVaule'",
                test_support::platform::task_path(&typo)
            ),
        ),
        (
            deploy(&name, &d).input("templateParametersFile", nul.to_str().unwrap()),
            format!(
                "Input 'templateParametersFile': '{}' is not a text file: it has a control character at line 2, column 1 (U+0000)",
                test_support::platform::task_path(&nul)
            ),
        ),
        (
            deploy(&name, &d).input("templateParametersFile", binary.to_str().unwrap()),
            format!(
                "Input 'templateParametersFile': '{}' is not UTF-8 text (an invalid byte on line 1)",
                test_support::platform::task_path(&binary)
            ),
        ),
        (
            TaskEnv::moto()
                .input("stackName", &name)
                .input("templateSource", "usePrevious"),
            format!("stack {name} does not exist yet: there is no previous template"),
        ),
        (
            deploy("bad_name", &d),
            "Input 'stackName': 'bad_name' is not a stack name".into(),
        ),
        (
            deploy(&name, &d).input("templateFile", big.to_str().unwrap()),
            "over CloudFormation's limit of 51200 bytes".into(),
        ),
        (
            deploy(&name, &d).input("templateSource", "s3"),
            "Inputs 's3BucketName' and 's3ObjectKey' are both required".into(),
        ),
        (
            deploy(&name, &d).input("onFailure", "EXPLODE"),
            "Input 'onFailure' must be one of: ROLLBACK, DO_NOTHING, DELETE".into(),
        ),
        (
            deploy(&name, &d).input("timeoutInMins", "soon"),
            "Input 'timeoutInMins' must be a whole number".into(),
        ),
    ];
    for (env, message) in cases {
        let run = env.run(bin());
        run.assert_failed_with(&message);
    }
    let bad_line = deploy(&name, &d)
        .input("templateParametersFile", bad_params.to_str().unwrap())
        .run(bin());
    assert!(
        bad_line.errors()[0].contains("line 3"),
        "{:?}",
        bad_line.errors()
    );
    assert!(stack(&name).is_none(), "no stack was created");
}

#[test]
fn termination_protection_on_create() {
    let name = unique("stack");
    let d = dir();
    deploy(&name, &d)
        .input("parameterOverrides", "Version=1")
        .input("enableTerminationProtection", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(
        stack(&name).unwrap().enable_termination_protection(),
        Some(true)
    );

    // Through a change set it is set after the stack is created, with
    // UpdateTerminationProtection, which moto does not implement: the
    // stack is complete, so the refusal is a warning, not a failure.
    let name = unique("stack");
    let run = deploy(&name, &d)
        .input("parameterOverrides", "Version=1")
        .input("useChangeSet", "true")
        .input("enableTerminationProtection", "true")
        .run(bin());
    run.assert_warned("termination protection could not be enabled");
    assert_eq!(status(&stack(&name).unwrap()), "CREATE_COMPLETE");
}
