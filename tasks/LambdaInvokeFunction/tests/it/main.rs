//! LambdaInvokeFunction against moto, which echoes the event when Lambda runs
//! without Docker (`cargo xtask test` configures that). Function errors and
//! log tails, which moto cannot produce, come from a proxy in front of it.

use std::io::Write;
use std::path::Path;

use test_support::{Response, TaskEnv, block_on, faulty_proxy, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambdainvokefunction"))
}

/// A function in moto (its code is never run).
fn function() -> String {
    let name = unique("fn");
    let role = block_on(async {
        let iam = aws_sdk_iam::Client::new(&sdk_config());
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        iam.create_role()
            .role_name(&name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap()
            .role
            .unwrap()
            .arn
    });
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"def handler(event, context):\n    return event\n")
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&sdk_config());
        lambda
            .create_function()
            .function_name(&name)
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .role(role)
            .handler("index.handler")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(bytes.into())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    name
}

fn invoke(name: &str) -> TaskEnv {
    TaskEnv::moto().input("functionName", name)
}

#[test]
fn a_json_payload_is_sent_and_the_response_stored() {
    let f = function();
    let run = invoke(&f)
        .input("payload", r#"{"deploy": "v1;]%"}"#)
        .input("outputVariable", "result")
        .run(bin());
    run.assert_succeeded();
    let stored = run.variable("result").expect("the output variable is set");
    let echoed: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(echoed, serde_json::json!({"deploy": "v1;]%"}));
}

#[test]
fn a_plain_text_payload_is_sent_as_a_json_string() {
    let f = function();
    let run = invoke(&f)
        .input("payload", "hello world")
        .input("outputVariable", "result")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(run.variable("result").as_deref(), Some(r#""hello world""#));
}

#[test]
fn an_event_invocation_stores_no_payload() {
    let f = function();
    let run = invoke(&f)
        .input("invocationType", "Event")
        .input("outputVariable", "result")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(run.variable("result"), None);
    assert!(run.stdout.contains("Status 202"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("No payload to store in 'result': Event invocations return none.")
    );
}

#[test]
fn a_missing_function_is_named() {
    let name = unique("nofn");
    invoke(&name).run(bin()).assert_failed_with(&format!(
        "Function '{name}' does not exist in region us-east-1"
    ));
}

/// The proxy turns the invoke response into a function error with a log tail.
fn failing_function_proxy() -> test_support::HttpServer {
    faulty_proxy(&test_support::moto(), |req| {
        req.path().ends_with("/invocations").then(|| {
            Response::new(200, r#"{"errorMessage":"boom","errorType":"RuntimeError"}"#)
                .header("X-Amz-Function-Error", "Unhandled")
                .header(
                    "X-Amz-Log-Result",
                    "U1RBUlQgUmVxdWVzdElkOiAxCmJvb20KRU5EIFJlcXVlc3RJZDogMQ==",
                )
                .header("X-Amz-Executed-Version", "$LATEST")
                .header("Content-Type", "application/json")
        })
    })
}

#[test]
fn a_function_error_fails_the_task_and_shows_the_error() {
    let f = function();
    let p = failing_function_proxy();
    let run = invoke(&f)
        .set("AWS_ENDPOINT_URL", &p.url)
        .input("logType", "Tail")
        .run(bin());
    run.assert_failed_with(&format!(
        r#"Function '{f}' returned an error (Unhandled): {{"errorMessage":"boom","errorType":"RuntimeError"}}"#
    ));
    // The log tail is decoded and printed.
    assert!(
        run.stdout
            .contains("START RequestId: 1\nboom\nEND RequestId: 1"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_function_error_is_a_warning_when_the_user_opts_out() {
    let f = function();
    let p = failing_function_proxy();
    let run = invoke(&f)
        .set("AWS_ENDPOINT_URL", &p.url)
        .input("failOnFunctionError", "false")
        .input("outputVariable", "result")
        .run(bin());
    run.assert_warned("returned an error (Unhandled)");
    assert_eq!(
        run.variable("result").as_deref(),
        Some(r#"{"errorMessage":"boom","errorType":"RuntimeError"}"#)
    );
}

#[test]
fn bad_inputs_are_named() {
    TaskEnv::moto()
        .run(bin())
        .assert_failed_with("Input required: functionName");
    invoke("f")
        .input("invocationType", "Async")
        .run(bin())
        .assert_failed_with(
            "Input 'invocationType' must be one of: RequestResponse, Event, DryRun (got 'Async')",
        );
}
