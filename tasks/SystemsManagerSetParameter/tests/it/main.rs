//! SystemsManagerSetParameter against moto.

use std::path::Path;

use aws_sdk_ssm::types::ParameterType;
use test_support::{TaskEnv, assert_no_leaks, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_systemsmanagersetparameter"))
}

fn read(name: &str) -> aws_sdk_ssm::types::Parameter {
    let ssm = aws_sdk_ssm::Client::new(&sdk_config());
    block_on(ssm.get_parameter().name(name).with_decryption(true).send())
        .unwrap()
        .parameter
        .unwrap()
}

fn set(name: &str, kind: &str, value: &str) -> TaskEnv {
    TaskEnv::moto()
        .input("parameterName", name)
        .input("parameterType", kind)
        .input("parameterValue", value)
}

#[test]
fn creates_then_overwrites_each_type() {
    let name = format!("/{}/p", unique("set"));
    let run = set(&name, "string", "v1").run(bin());
    run.assert_succeeded();
    let p = read(&name);
    assert_eq!(
        (p.value(), p.r#type(), p.version),
        (Some("v1"), Some(&ParameterType::String), 1)
    );
    assert!(run.stdout.contains("created: version 1"));

    set(&name, "StringList", "a,b")
        .run(bin())
        .assert_succeeded();
    let p = read(&name);
    assert_eq!(
        (p.value(), p.r#type(), p.version),
        (Some("a,b"), Some(&ParameterType::StringList), 2)
    );
}

#[test]
fn secure_strings_are_secret_and_stay_secure() {
    let name = format!("/{}/secure", unique("set"));
    let run = set(&name, "SecureString", "top-secret-param").run(bin());
    run.assert_succeeded();
    assert_no_leaks(&run, &["top-secret-param"]);
    assert_eq!(read(&name).r#type(), Some(&ParameterType::SecureString));

    let run = set(&name, "String", "still-secret-param").run(bin());
    run.assert_warned("stays one");
    assert_no_leaks(&run, &["still-secret-param"]);
    let p = read(&name);
    assert_eq!(
        (p.value(), p.r#type()),
        (
            Some("still-secret-param"),
            Some(&ParameterType::SecureString)
        )
    );
}

#[test]
fn bad_inputs_are_named() {
    set("/x", "Number", "1").run(bin()).assert_failed_with(
        "Input 'parameterType' must be one of: String, StringList, SecureString (got 'Number')",
    );
    TaskEnv::moto()
        .input("parameterName", "/x")
        .run(bin())
        .assert_failed_with("Input required: parameterValue");
}
