//! ConfigureAWSCredentials against moto, run as a process: the variables it
//! sets are read back from its `##vso` lines, and fed to the next run as the
//! agent would, to prove the next step really signs with them.

use std::path::Path;

use test_support::{HttpServer, Request, TaskEnv, TaskRun, recording_proxy};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_configureawscredentials"))
}

const CONN: &str = "c0f1a0e5-0000-4000-8000-00000000c0de";
const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";

/// Keys in the agent's environment (not moto's defaults, so that what is
/// handed on can be told apart).
fn keys() -> TaskEnv {
    TaskEnv::moto()
        .set("AWS_ACCESS_KEY_ID", "AKIACONFIGURE0000001")
        .set("AWS_SECRET_ACCESS_KEY", "configure-secret-one")
}

fn requests(proxy: &HttpServer, action: &str) -> Vec<Request> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.form("Action").as_deref() == Some(action))
        .collect()
}

/// Every line that holds `secret` is its own `task.setsecret` or a secret
/// `task.setvariable`, and the first of them registers it.
fn assert_only_in_secret_lines(run: &TaskRun, secret: &str) {
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .filter(|l| l.contains(secret))
        .collect();
    assert!(!lines.is_empty(), "{secret} never appears");
    assert!(
        lines[0].starts_with("##vso[task.setsecret]"),
        "{secret} is used before it is registered: {}",
        lines[0]
    );
    for line in lines {
        assert!(
            line.starts_with("##vso[task.setsecret]")
                || (line.starts_with("##vso[task.setvariable ") && line.contains("issecret=true;")),
            "{secret} leaked in {line}"
        );
    }
}

#[test]
fn the_resolved_keys_become_variables_for_the_later_steps() {
    let run = keys().run(bin());
    run.assert_succeeded();
    assert_eq!(
        run.variable("AWS.AccessKeyID").as_deref(),
        Some("AKIACONFIGURE0000001")
    );
    assert_eq!(
        run.variable("AWS.SecretAccessKey").as_deref(),
        Some("configure-secret-one")
    );
    assert_eq!(run.variable_is_secret("AWS.AccessKeyID"), Some(true));
    assert_eq!(run.variable_is_secret("AWS.SecretAccessKey"), Some(true));
    assert_eq!(run.variable("AWS.SessionToken"), None);
    assert_eq!(run.variable("AWS.Region").as_deref(), Some("us-east-1"));
    assert_eq!(run.variable_is_secret("AWS.Region"), Some(false));
    // Not asked for: no AWS_* variables.
    assert_eq!(run.variable("AWS_ACCESS_KEY_ID"), None);
    let outputs: Vec<_> = run
        .commands()
        .into_iter()
        .filter(|c| c.is("task.setvariable") && c.property("isoutput") == Some("true"))
        .map(|c| (c.property("variable").unwrap().to_string(), c.message))
        .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[0], ("awsAccountId".into(), "123456789012".into()));
    assert_eq!(outputs[1].0, "awsCallerArn");
    assert!(outputs[1].1.starts_with("arn:aws:"), "{}", outputs[1].1);
    let summary = run
        .plain()
        .into_iter()
        .find(|l| l.starts_with("AWS identity "))
        .unwrap_or_else(|| panic!("no summary:\n{}", run.stdout));
    assert!(summary.contains("(account 123456789012) from the environment variables"));
    assert!(summary.contains("long-lived keys, which do not expire"));
    assert!(summary.contains("AWS.AccessKeyID, AWS.SecretAccessKey, AWS.Region"));
    assert_only_in_secret_lines(&run, "configure-secret-one");
}

#[test]
fn a_role_is_assumed_with_its_session_settings_and_handed_on() {
    let proxy = recording_proxy(&test_support::moto());
    let run = keys()
        .set("AWS_ENDPOINT_URL", &proxy.url)
        .input("roleToAssume", ROLE)
        .input("roleSessionName", "ci-session")
        .input("roleExternalId", "ext-id-42")
        .input("roleDurationSeconds", "7200")
        .input("roleSessionTags", "team=data\nenv=prod")
        .input("exportEnvironmentVariables", "true")
        .run(bin());
    run.assert_succeeded();

    let assume = requests(&proxy, "AssumeRole");
    assert_eq!(assume.len(), 1);
    let a = &assume[0];
    assert_eq!(a.form("RoleArn").as_deref(), Some(ROLE));
    assert_eq!(a.form("RoleSessionName").as_deref(), Some("ci-session"));
    assert_eq!(a.form("ExternalId").as_deref(), Some("ext-id-42"));
    assert_eq!(a.form("DurationSeconds").as_deref(), Some("7200"));
    assert_eq!(a.form("Tags.member.1.Key").as_deref(), Some("team"));
    assert_eq!(a.form("Tags.member.1.Value").as_deref(), Some("data"));
    assert_eq!(a.form("Tags.member.2.Key").as_deref(), Some("env"));
    // Signed with the agent's keys.
    assert!(
        a.header("authorization")
            .unwrap()
            .contains("Credential=AKIACONFIGURE0000001/")
    );

    let key = run.variable("AWS.AccessKeyID").unwrap();
    let secret = run.variable("AWS.SecretAccessKey").unwrap();
    let token = run.variable("AWS.SessionToken").unwrap();
    assert_ne!(key, "AKIACONFIGURE0000001", "the role's keys are handed on");
    assert_eq!(run.variable_is_secret("AWS.SessionToken"), Some(true));
    // The identity is checked with exactly the keys handed on.
    let who = requests(&proxy, "GetCallerIdentity");
    assert_eq!(who.len(), 1);
    assert!(
        who[0]
            .header("authorization")
            .unwrap()
            .contains(&format!("Credential={key}/"))
    );
    assert_eq!(who[0].header("x-amz-security-token"), Some(token.as_str()));
    assert!(
        run.variable("awsCallerArn")
            .unwrap()
            .contains(":assumed-role/deploy/ci-session"),
        "{:?}",
        run.variable("awsCallerArn")
    );
    // Exported for scripts too: credentials secret, region plain.
    assert_eq!(run.variable("AWS_ACCESS_KEY_ID"), Some(key.clone()));
    assert_eq!(run.variable("AWS_SECRET_ACCESS_KEY"), Some(secret.clone()));
    assert_eq!(run.variable("AWS_SESSION_TOKEN"), Some(token.clone()));
    assert_eq!(run.variable_is_secret("AWS_SESSION_TOKEN"), Some(true));
    assert_eq!(run.variable("AWS_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(
        run.variable("AWS_DEFAULT_REGION").as_deref(),
        Some("us-east-1")
    );
    assert_eq!(run.variable_is_secret("AWS_DEFAULT_REGION"), Some(false));
    let summary = run
        .plain()
        .into_iter()
        .find(|l| l.starts_with("AWS identity "))
        .unwrap()
        .to_string();
    assert!(
        summary
            .contains("from the role arn:aws:iam::123456789012:role/deploy (session 'ci-session'")
    );
    assert!(summary.contains("valid until "), "{summary}");
    for s in [&secret, &token, &key] {
        assert_only_in_secret_lines(&run, s);
    }
    assert_only_in_secret_lines(&run, "configure-secret-one");

    // The next step of the job gets the variables as the agent passes them
    // (secret ones as SECRET_*), with no other credentials: it signs as the
    // assumed role.
    let next = TaskEnv::moto()
        .unset("AWS_ACCESS_KEY_ID")
        .unset("AWS_SECRET_ACCESS_KEY")
        .unset("INPUT_REGIONNAME")
        .secret_variable("AWS.AccessKeyID", &key)
        .secret_variable("AWS.SecretAccessKey", &secret)
        .secret_variable("AWS.SessionToken", &token)
        .variable("AWS.Region", "us-east-1")
        .run(bin());
    next.assert_succeeded();
    assert_eq!(next.variable("awsCallerArn"), run.variable("awsCallerArn"));
    assert!(
        next.stdout
            .contains("pipeline variables AWS.AccessKeyID/AWS.SecretAccessKey"),
        "{}",
        next.stdout
    );
}

#[test]
fn an_account_not_allowed_fails_before_any_variable_is_set() {
    let run = keys()
        .input("allowedAccountIds", "111111111111, 222222222222")
        .run(bin());
    run.assert_failed_with("belong to account 123456789012 (arn:aws:");
    run.assert_failed_with(
        "which allowedAccountIds does not list (111111111111, 222222222222): no variable was set.",
    );
    assert!(
        !run.commands().iter().any(|c| c.is("task.setvariable")),
        "{}",
        run.stdout
    );
    // Listed: it passes.
    keys()
        .input("allowedAccountIds", "111111111111,123456789012")
        .run(bin())
        .assert_succeeded();
}

#[test]
fn bad_role_inputs_fail_before_any_request() {
    let proxy = recording_proxy(&test_support::moto());
    for (input, value, message) in [
        (
            "roleToAssume",
            "deploy",
            "Input 'roleToAssume' is 'deploy': give a role ARN",
        ),
        ("roleDurationSeconds", "60", "roleDurationSeconds"),
        (
            "roleSessionTags",
            "no-equals-sign",
            "Input 'roleSessionTags', line 1: expected Key=Value",
        ),
    ] {
        let mut env = keys().set("AWS_ENDPOINT_URL", &proxy.url);
        if input != "roleToAssume" {
            env = env.input("roleToAssume", ROLE);
        }
        env.input(input, value)
            .run(bin())
            .assert_failed_with(message);
    }
    assert!(proxy.requests().is_empty(), "a request was sent");
}

/// An Azure DevOps OIDC token exchanged for a role (the service connection),
/// then handed on: the web identity session's secrets are registered and
/// set, never printed.
#[test]
fn oidc_credentials_are_registered_and_handed_on() {
    const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL2NvbmZpZ3VyZSJ9.c2ln";
    let ado = test_support::ado_oidc(OIDC_TOKEN);
    let run = TaskEnv::moto()
        .oidc_connection(CONN, "arn:aws:iam::123456789012:role/oidc-deployer", &ado)
        .run(bin());
    run.assert_succeeded();
    let token = run.variable("AWS.SessionToken").expect("a session token");
    let secret = run.variable("AWS.SecretAccessKey").unwrap();
    assert!(
        run.variable("awsCallerArn")
            .unwrap()
            .contains(":assumed-role/oidc-deployer/"),
        "{:?}",
        run.variable("awsCallerArn")
    );
    assert_only_in_secret_lines(&run, &token);
    assert_only_in_secret_lines(&run, &secret);
    test_support::assert_no_leaks(&run, &[OIDC_TOKEN, test_support::ADO_JOB_TOKEN]);
}
