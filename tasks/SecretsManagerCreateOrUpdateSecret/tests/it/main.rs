//! SecretsManagerCreateOrUpdateSecret against moto, state read back with the SDK.

use std::path::Path;

use test_support::{TaskEnv, assert_no_leaks, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_secretsmanagercreateorupdatesecret"))
}

fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config())
}

fn read(name: &str) -> aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput {
    block_on(client().get_secret_value().secret_id(name).send()).unwrap()
}

fn step(name: &str) -> TaskEnv {
    TaskEnv::moto()
        .input("secretNameOrId", name)
        .input("secretValueSource", "inline")
}

#[test]
fn creates_a_missing_secret_with_description_tags_and_outputs() {
    let name = unique("created");
    let value = "new;secret]value%1";
    let run = step(&name)
        .input("secretValue", value)
        .input("autoCreateSecret", "true")
        .input("description", "made by the pipeline")
        .input("tags", "team=platform\nenv = prod")
        .input("arnOutputVariable", "secretArn")
        .input("versionIdOutputVariable", "secretVersion")
        .run(bin());
    run.assert_succeeded();
    let got = read(&name);
    assert_eq!(got.secret_string(), Some(value));
    let desc = block_on(client().describe_secret().secret_id(&name).send()).unwrap();
    assert_eq!(desc.description(), Some("made by the pipeline"));
    let mut tags: Vec<(String, String)> = desc
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "platform".to_string())
        ]
    );

    let vars: Vec<(String, String)> = run
        .commands()
        .into_iter()
        .filter(|c| c.is("task.setvariable"))
        .map(|c| (c.property("variable").unwrap().to_string(), c.message))
        .collect();
    assert_eq!(
        vars,
        [
            ("secretArn".to_string(), got.arn().unwrap().to_string()),
            (
                "secretVersion".to_string(),
                got.version_id().unwrap().to_string()
            ),
        ]
    );
    assert_no_leaks(&run, &[value]);
}

#[test]
fn updates_an_existing_secret_from_a_file() {
    let name = unique("updated");
    block_on(
        client()
            .create_secret()
            .name(&name)
            .secret_string("old")
            .send(),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(unique("secretfile"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("value.json");
    std::fs::write(&file, "{\"password\":\"from-file-secret\"}\n").unwrap();
    let run = TaskEnv::moto()
        .input("secretNameOrId", &name)
        .input("secretValueSource", "file")
        .input("secretValueFile", file.to_str().unwrap())
        .input("description", "rotated")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        read(&name).secret_string(),
        Some("{\"password\":\"from-file-secret\"}\n")
    );
    assert_no_leaks(&run, &["from-file-secret"]);
    assert!(run.stdout.contains(&format!("Secret '{name}' updated")));

    std::fs::write(&file, [0u8, 159, 146, 150]).unwrap();
    let run = TaskEnv::moto()
        .input("secretNameOrId", &name)
        .input("secretValueSource", "file")
        .input("secretValueType", "binary")
        .input("secretValueFile", file.to_str().unwrap())
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        read(&name).secret_binary().unwrap().as_ref(),
        &[0u8, 159, 146, 150]
    );
}

/// On a real agent the file input the user left empty holds the sources
/// folder: an inline value must still be accepted.
#[test]
fn an_inline_value_with_the_file_input_filled_in_by_the_agent() {
    let name = unique("agentfill");
    let sources = std::env::temp_dir().join(unique("s"));
    std::fs::create_dir_all(&sources).unwrap();
    let s = sources.to_str().unwrap();
    step(&name)
        .set("BUILD_SOURCESDIRECTORY", s)
        .input("secretValue", "inline-value")
        .input("secretValueFile", &format!("{s}/"))
        .input("autoCreateSecret", "true")
        .run(bin())
        .assert_succeeded();
    assert_eq!(read(&name).secret_string(), Some("inline-value"));
    // A folder that is not the agent's fill-in is still an error.
    let other = std::env::temp_dir();
    step(&name)
        .set("BUILD_SOURCESDIRECTORY", s)
        .input("secretValueSource", "file")
        .input("secretValueFile", other.to_str().unwrap())
        .run(bin())
        .assert_failed_with("is not a file");
}

#[test]
fn a_missing_secret_without_auto_create_is_an_error() {
    let name = unique("absent");
    step(&name)
        .input("secretValue", "v")
        .run(bin())
        .assert_failed_with(&format!(
            "Secret '{name}' does not exist in region us-east-1. Set autoCreateSecret"
        ));
    let missing = block_on(client().describe_secret().secret_id(&name).send());
    assert!(missing.is_err(), "nothing was created");
}

#[test]
fn bad_inputs_are_named_before_any_call() {
    let name = unique("bad");
    step(&name)
        .input("secretValue", "inline-value-xyz")
        .input("secretValueFile", "/etc/hostname")
        .run(bin())
        .assert_failed_with("Inputs 'secretValue' and 'secretValueFile' are both set");
    step(&name)
        .run(bin())
        .assert_failed_with("Input required: secretValue");
    let tags: String = (0..51).map(|i| format!("k{i}=v\n")).collect();
    step(&name)
        .input("secretValue", "tagged-secret-value")
        .input("autoCreateSecret", "true")
        .input("tags", &tags)
        .run(bin())
        .assert_failed_with("51 tags given; Secrets Manager allows at most 50");
    TaskEnv::moto()
        .input("secretNameOrId", &name)
        .input("secretValueSource", "file")
        .input("secretValueFile", "/no/such/file")
        .run(bin())
        .assert_failed_with("Input 'secretValueFile'");
}
