//! SecretsManagerGetSecret against moto: secrets created with the SDK, the
//! task run as a process, its `##vso` lines checked exactly.

use std::path::Path;

use aws_sdk_secretsmanager::primitives::Blob;
use test_support::{TaskEnv, TaskRun, assert_no_leaks, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_secretsmanagergetsecret"))
}

fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config())
}

fn create(name: &str, value: &str) -> String {
    block_on(
        client()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send(),
    )
    .unwrap()
    .version_id()
    .unwrap()
    .to_string()
}

fn get(secret: &str, variable: &str) -> TaskEnv {
    TaskEnv::moto()
        .input("secretIdOrName", secret)
        .input("variableName", variable)
}

/// The `task.setvariable` lines: (raw line, variable, issecret, value).
fn setvariables(run: &TaskRun) -> Vec<(String, String, String)> {
    run.commands()
        .into_iter()
        .filter(|c| c.is("task.setvariable"))
        .map(|c| {
            (
                c.property("variable").unwrap_or("").to_string(),
                c.property("issecret").unwrap_or("").to_string(),
                c.message,
            )
        })
        .collect()
}

#[test]
fn a_string_secret_becomes_a_secret_variable_with_exact_escaping() {
    let name = unique("app/db");
    let value = "p;a]ss%w0rd=x";
    create(&name, value);
    let run = get(&name, "dbPassword").run(bin());
    run.assert_succeeded();
    assert_eq!(
        setvariables(&run),
        [(
            "dbPassword".to_string(),
            "true".to_string(),
            value.to_string()
        )]
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("##vso[task.setvariable"))
        .unwrap();
    assert_eq!(
        line,
        "##vso[task.setvariable variable=dbPassword;issecret=true;]p;a]ss%AZP25w0rd=x"
    );
    // Registered before it is used in any other line.
    let first_use = run
        .stdout
        .lines()
        .position(|l| l.contains("p;a]ss"))
        .unwrap();
    assert!(
        run.stdout
            .lines()
            .nth(first_use)
            .unwrap()
            .starts_with("##vso[task.setsecret]")
    );
    assert_no_leaks_except_setvariable(&run, value);
}

/// The value may appear only in its own setsecret and setvariable lines.
fn assert_no_leaks_except_setvariable(run: &TaskRun, value: &str) {
    let without: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("##vso[task.setvariable") || !l.contains("issecret=true"))
        .map(|l| format!("{l}\n"))
        .collect();
    let filtered = TaskRun {
        stdout: without,
        stderr: run.stderr.clone(),
        code: run.code,
    };
    assert_no_leaks(&filtered, &[value]);
    // And its escaped form nowhere but there either.
    let escaped = vsts_task::command::escape_message(value);
    for l in filtered.stdout.lines() {
        assert!(
            !l.contains(&escaped) || l.starts_with("##vso[task.setsecret]"),
            "{l}"
        );
    }
}

#[test]
fn version_id_wins_over_version_stage() {
    let name = unique("versions");
    let v1 = create(&name, "first-value");
    block_on(
        client()
            .put_secret_value()
            .secret_id(&name)
            .secret_string("second-value")
            .send(),
    )
    .unwrap();
    let run = get(&name, "v")
        .input("versionId", &v1)
        .input("versionStage", "AWSCURRENT")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(setvariables(&run)[0].2, "first-value");
    assert!(run.stdout.contains("versionId wins"));

    let run = get(&name, "v")
        .input("versionStage", "AWSPREVIOUS")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(setvariables(&run)[0].2, "first-value");
    let run = get(&name, "v").run(bin());
    assert_eq!(setvariables(&run)[0].2, "second-value");
}

#[test]
fn a_binary_secret_is_decoded() {
    let name = unique("binary");
    block_on(
        client()
            .create_secret()
            .name(&name)
            .secret_binary(Blob::new(b"binary-but-text".to_vec()))
            .send(),
    )
    .unwrap();
    let run = get(&name, "bin").run(bin());
    run.assert_succeeded();
    assert_eq!(setvariables(&run)[0].2, "binary-but-text");
    assert_no_leaks_except_setvariable(&run, "binary-but-text");
}

#[test]
fn json_keys_become_one_secret_variable_each() {
    let name = unique("json");
    let value = r#"{"user":"admin","pass":"s;e]c%r\"et","port":5432,"nested":{"a":1}}"#;
    create(&name, value);
    let run = get(&name, "db")
        .input("jsonKeysAsVariables", "true")
        .run(bin());
    run.assert_succeeded();
    let vars = setvariables(&run);
    let find = |n: &str| {
        vars.iter()
            .find(|(v, _, _)| v == n)
            .map(|(_, s, val)| (s.as_str(), val.as_str()))
    };
    assert_eq!(find("db"), Some(("true", value)));
    assert_eq!(find("db.user"), Some(("true", "admin")));
    assert_eq!(find("db.pass"), Some(("true", "s;e]c%r\"et")));
    assert_eq!(find("db.port"), Some(("true", "5432")));
    assert_eq!(find("db.nested"), Some(("true", r#"{"a":1}"#)));
    for secret in ["admin", "s;e]c%r\"et", "5432"] {
        assert!(
            run.registered_secrets().iter().any(|s| s == secret),
            "{secret}"
        );
    }
    assert_no_leaks_except_setvariable(&run, "s;e]c%r\"et");
}

#[test]
fn json_keys_that_cannot_be_variable_names_are_named() {
    let name = unique("badjson");
    create(&name, r#"{"ok":"1","bad key":"2"}"#);
    let run = get(&name, "db")
        .input("jsonKeysAsVariables", "true")
        .run(bin());
    run.assert_failed_with("The JSON key 'bad key' gives the variable name 'db.bad key'");
    assert!(setvariables(&run).is_empty(), "nothing half-done");

    let name = unique("notjson");
    create(&name, "plain");
    get(&name, "db")
        .input("jsonKeysAsVariables", "true")
        .run(bin())
        .assert_failed_with("is not a JSON object");
}

#[test]
fn multi_line_secrets() {
    let name = unique("pem");
    let value = "-----BEGIN KEY-----\nline-one-of-key\nline-two-of-key\n-----END KEY-----";
    create(&name, value);

    let run = get(&name, "pem").run(bin());
    run.assert_failed_with("has several lines");
    assert!(setvariables(&run).is_empty());
    assert_no_leaks(&run, &["line-one-of-key", "line-two-of-key"]);

    let run = get(&name, "pem")
        .input("multiLineSecret", "escapeNewlines")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(setvariables(&run)[0].2, value.replace('\n', "\\n"));

    let run = get(&name, "pem")
        .input("multiLineSecret", "base64")
        .run(bin());
    run.assert_succeeded();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&setvariables(&run)[0].2)
        .unwrap();
    assert_eq!(decoded, value.as_bytes());

    let run = get(&name, "pem")
        .secret_variable("System.UnsafeAllowMultilineSecret", "true")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(setvariables(&run)[0].2, value);
    // Each line is registered, since the agent masks line by line.
    for l in ["line-one-of-key", "line-two-of-key"] {
        assert!(run.registered_secrets().iter().any(|s| s == l));
    }
}

#[test]
fn a_missing_secret_is_named() {
    let name = unique("missing");
    get(&name, "v").run(bin()).assert_failed_with(&format!(
        "Secret '{name}' was not found in region us-east-1"
    ));
}

#[test]
fn log_response_never_prints_the_value() {
    let name = unique("logged");
    let value = "logged-secret-value";
    create(&name, value);
    let run = get(&name, "v")
        .input("logRequest", "true")
        .input("logResponse", "true")
        .run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("AWS request: POST"), "{}", run.stdout);
    assert!(run.stdout.contains("AWS response: 200"));
    assert!(run.stdout.contains("authorization: <redacted>"));
    assert!(!run.stdout.contains("AWS4-HMAC-SHA256"));
    assert_no_leaks_except_setvariable(&run, value);
}
