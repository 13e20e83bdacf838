//! Each credential source alone, every pair for precedence, assumed roles,
//! half-configured sources, and the leak scan.

use test_support::assert_no_leaks;

use crate::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/deployer";

#[test]
fn service_connection_keys_alone() {
    let p = proxy();
    let run = E::new()
        .connection(&[
            ("username", "AKIACONN0000000001"),
            ("password", "conn-secret/+=1"),
        ])
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    assert_eq!(
        described(&run),
        format!(
            "AWS credentials: service connection {CONN}; region eu-west-1 (task input regionName)"
        )
    );
    let call = last_call(&p, "GetCallerIdentity");
    assert_eq!(
        signer(&call),
        Some(("AKIACONN0000000001".into(), "eu-west-1".into()))
    );
    assert_no_leaks(&run, &["conn-secret/+=1"]);
    assert!(
        run.registered_secrets()
            .contains(&"conn-secret/+=1".to_string())
    );
}

#[test]
fn service_connection_keys_with_session_token() {
    let p = proxy();
    let run = E::new()
        .connection(&[
            ("username", "ASIACONN0000000002"),
            ("password", "conn-secret-2"),
            ("sessionToken", "conn-token-2"),
        ])
        .region("us-east-2")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    let call = last_call(&p, "GetCallerIdentity");
    assert_eq!(call.header("x-amz-security-token"), Some("conn-token-2"));
    assert!(described(&run).contains("(with session token)"));
    assert_no_leaks(&run, &["conn-secret-2", "conn-token-2"]);
}

/// Keys + role: the role is assumed with the keys, with the external id,
/// session name and duration the user set; the temporary credentials STS
/// returns are registered as secrets and then used.
#[test]
fn service_connection_assumes_role_with_external_id_and_session_name() {
    let p = proxy();
    let run = E::new()
        .connection(&[
            ("username", "AKIACONN0000000003"),
            ("password", "conn-secret-3"),
            ("assumeRoleArn", ROLE),
            ("externalId", "ext-1234"),
            ("roleSessionName", "deploy-sess"),
        ])
        .set("AWS_ROLECREDENTIAL_MAXDURATION", "3600")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/deployer/deploy-sess"
    );

    let (assume, resp) = p
        .exchanges()
        .into_iter()
        .find(|(r, _)| action(r) == "AssumeRole")
        .expect("AssumeRole was called");
    assert_eq!(form(&assume, "RoleArn").as_deref(), Some(ROLE));
    assert_eq!(form(&assume, "ExternalId").as_deref(), Some("ext-1234"));
    assert_eq!(
        form(&assume, "RoleSessionName").as_deref(),
        Some("deploy-sess")
    );
    assert_eq!(form(&assume, "DurationSeconds").as_deref(), Some("3600"));
    assert_eq!(signer(&assume).unwrap().0, "AKIACONN0000000003");

    // The call after it is signed with the temporary credentials.
    let temp_key = xml_tag(&resp.body, "AccessKeyId").unwrap();
    let temp_secret = xml_tag(&resp.body, "SecretAccessKey").unwrap();
    let temp_token = xml_tag(&resp.body, "SessionToken").unwrap();
    assert_eq!(
        signer(&last_call(&p, "GetCallerIdentity")).unwrap().0,
        temp_key
    );

    let registered = run.registered_secrets();
    for s in [&temp_secret, &temp_token, &temp_key] {
        assert!(registered.contains(s), "{s} not registered");
    }
    assert_no_leaks(
        &run,
        &["conn-secret-3", &temp_secret, &temp_token, &temp_key],
    );
    assert_eq!(
        described(&run),
        format!(
            "AWS credentials: service connection {CONN} (assumed role {ROLE}, session 'deploy-sess', with external id); region eu-west-1 (task input regionName)"
        )
    );
}

/// A role without keys is assumed with the agent's ambient credentials.
#[test]
fn service_connection_role_without_keys_uses_ambient_credentials() {
    let p = proxy();
    let run = E::new()
        .connection(&[("assumeRoleArn", ROLE)])
        .set("AWS_ACCESS_KEY_ID", "AKIAENV00000000004")
        .set("AWS_SECRET_ACCESS_KEY", "env-secret-4")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    let assume = last_call(&p, "AssumeRole");
    assert_eq!(signer(&assume).unwrap().0, "AKIAENV00000000004");
    assert_eq!(
        form(&assume, "RoleSessionName").as_deref(),
        Some("aws-vsts-tools")
    );
    assert_eq!(form(&assume, "DurationSeconds").as_deref(), Some("900"));
    assert!(described(&run).contains("using environment variables AWS_ACCESS_KEY_ID"));
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/deployer/aws-vsts-tools"
    );
}

#[test]
fn pipeline_variables_alone_public_and_secret() {
    let p = proxy();
    let run = E::new()
        .set("AWS_ACCESSKEYID", "AKIAVAR00000000005")
        .set("SECRET_AWS_SECRETACCESSKEY", "var-secret-5")
        .set("SECRET_AWS_SESSIONTOKEN", "var-token-5")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    assert!(described(&run).starts_with("AWS credentials: pipeline variables"));
    let call = last_call(&p, "GetCallerIdentity");
    assert_eq!(signer(&call).unwrap().0, "AKIAVAR00000000005");
    assert_eq!(call.header("x-amz-security-token"), Some("var-token-5"));
    assert_no_leaks(&run, &["var-secret-5", "var-token-5"]);
}

#[test]
fn pipeline_variables_with_role() {
    let p = proxy();
    let run = E::new()
        .set("AWS_ACCESSKEYID", "AKIAVAR00000000006")
        .set("SECRET_AWS_SECRETACCESSKEY", "var-secret-6")
        .set("AWS_ASSUMEROLEARN", ROLE)
        .set("AWS_EXTERNALID", "var-ext")
        .set("AWS_ROLESESSIONNAME", "var-sess")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    let assume = last_call(&p, "AssumeRole");
    assert_eq!(form(&assume, "ExternalId").as_deref(), Some("var-ext"));
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/deployer/var-sess"
    );
}

#[test]
fn environment_variables_alone_and_with_role() {
    let p = proxy();
    let base = E::new()
        .set("AWS_ACCESS_KEY_ID", "AKIAENV00000000007")
        .set("AWS_SECRET_ACCESS_KEY", "env-secret-7")
        .region("eu-west-1")
        .endpoint(&p.url);
    let run = base.run();
    run.assert_succeeded();
    assert!(described(&run).starts_with("AWS credentials: environment variables"));
    assert_eq!(
        signer(&last_call(&p, "GetCallerIdentity")).unwrap().0,
        "AKIAENV00000000007"
    );
    assert_no_leaks(&run, &["env-secret-7"]);

    let run = base
        .set("AWS_ROLE_ARN", ROLE)
        .set("AWS_ROLE_SESSION_NAME", "env-sess")
        .run();
    run.assert_succeeded();
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/deployer/env-sess"
    );
}

/// Every pair of sources: the higher one signs the call.
#[test]
fn precedence_pairs() {
    let conn = &[
        ("username", "AKIAPAIRCONN000000"),
        ("password", "pair-conn"),
    ][..];
    let vars = [
        ("AWS_ACCESSKEYID", "AKIAPAIRVAR0000000"),
        ("SECRET_AWS_SECRETACCESSKEY", "pair-var"),
    ];
    let envs = [
        ("AWS_ACCESS_KEY_ID", "AKIAPAIRENV0000000"),
        ("AWS_SECRET_ACCESS_KEY", "pair-env"),
    ];
    let cases: [(bool, Pairs, &str); 3] = [
        (true, vars.to_vec(), "AKIAPAIRCONN000000"),
        (true, envs.to_vec(), "AKIAPAIRCONN000000"),
        (false, [vars, envs].concat(), "AKIAPAIRVAR0000000"),
    ];
    for (with_conn, others, want) in cases {
        let p = proxy();
        let mut e = E::new().region("eu-west-1").endpoint(&p.url);
        if with_conn {
            e = e.connection(conn);
        }
        for (k, v) in &others {
            e = e.set(k, v);
        }
        let run = e.run();
        run.assert_succeeded();
        assert_eq!(
            signer(&last_call(&p, "GetCallerIdentity")).unwrap().0,
            want,
            "{others:?}"
        );
        assert_no_leaks(&run, &["pair-conn", "pair-var", "pair-env"]);
    }
}

/// A half-configured source stops the task with what is missing, before any
/// call to AWS, and never falls through to a lower source.
#[test]
fn half_configured_sources_fail_before_any_call() {
    let lower = [
        ("AWS_ACCESS_KEY_ID", "AKIALOWER000000000"),
        ("AWS_SECRET_ACCESS_KEY", "lower"),
    ];
    let cases: Vec<(E, &str)> = vec![
        (
            E::new().connection(&[("username", "AKIAHALF0000000000")]),
            "the Secret Access Key is empty",
        ),
        (
            E::new().connection(&[("password", "half-secret")]),
            "the Access Key ID is empty",
        ),
        (
            E::new().connection(&[("useOIDC", "true")]),
            "'Role to Assume' is empty",
        ),
        (
            E::new().set("AWS_ACCESSKEYID", "AKIAHALF0000000000"),
            "AWS.SecretAccessKey is not",
        ),
        (
            E::new().set("SECRET_AWS_SECRETACCESSKEY", "half-secret"),
            "AWS.AccessKeyID is not",
        ),
        (
            E::new().set("AWS_SECRET_ACCESS_KEY", "half-secret"),
            "AWS_ACCESS_KEY_ID is not",
        ),
    ];
    for (e, want) in cases {
        let p = proxy();
        let mut e = e.region("eu-west-1").endpoint(&p.url);
        if !e
            .0
            .iter()
            .any(|(k, _)| k.starts_with("AWS_SECRET_ACCESS_KEY"))
        {
            for (k, v) in lower {
                e = e.set(k, v);
            }
        }
        let run = e.run();
        run.assert_failed_with(want);
        assert!(
            p.requests().is_empty(),
            "no AWS call for a broken source ({want})"
        );
        assert_no_leaks(&run, &["half-secret", "lower"]);
    }
}

#[test]
fn a_connection_the_agent_did_not_pass_is_named() {
    E::new()
        .set("INPUT_AWSCREDENTIALS", "00000000-dead-4000-8000-000000000000")
        .region("eu-west-1")
        .run()
        .assert_failed_with("Input 'awsCredentials': service connection '00000000-dead-4000-8000-000000000000' was not passed");
}

#[test]
fn no_credentials_anywhere_names_every_way() {
    let run = E::new()
        .region("eu-west-1")
        .endpoint(&test_support::moto())
        .run();
    run.assert_failed_with("No AWS credentials found");
    let err = run.errors().join("\n");
    for way in [
        "awsCredentials",
        "AWS.AccessKeyID",
        "AWS_ACCESS_KEY_ID",
        "instance profile",
    ] {
        assert!(err.contains(way), "{way} in {err}");
    }
}

#[test]
fn a_bad_session_duration_warns_and_uses_900() {
    let p = proxy();
    let run = E::new()
        .connection(&[
            ("username", "AKIADUR00000000001"),
            ("password", "dur-secret"),
            ("assumeRoleArn", ROLE),
        ])
        .set("AWS_ROLECREDENTIAL_MAXDURATION", "2h")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_warned("aws.rolecredential.maxduration");
    assert_eq!(
        form(&last_call(&p, "AssumeRole"), "DurationSeconds").as_deref(),
        Some("900")
    );
}

#[test]
fn a_failed_assume_role_names_the_source() {
    // Nothing listens on port 9: STS cannot be reached.
    let run = E::new()
        .connection(&[
            ("username", "AKIAFAIL0000000001"),
            ("password", "fail-secret"),
            ("assumeRoleArn", ROLE),
        ])
        .set("AWS_MAX_ATTEMPTS", "1")
        .region("eu-west-1")
        .endpoint("http://127.0.0.1:9")
        .run();
    run.assert_failed_with(&format!(
        "Could not get AWS credentials from service connection {CONN}"
    ));
    assert_no_leaks(&run, &["fail-secret"]);
}

#[test]
fn the_service_connection_endpoint_url_is_used() {
    let p = proxy();
    let run = E::new()
        .connection(&[
            ("username", "AKIAEP000000000001"),
            ("password", "ep-secret"),
        ])
        .set(&format!("ENDPOINT_DATA_{CONN}_ENDPOINTURL"), &p.url)
        .region("eu-west-1")
        .run();
    run.assert_succeeded();
    assert!(described(&run).ends_with(&format!("; endpoint {} (service connection)", p.url)));
    assert_eq!(last_call(&p, "GetCallerIdentity").method, "POST");
}

#[test]
fn a_per_service_endpoint_variable_is_honoured() {
    let p = proxy();
    E::new()
        .connection(&[
            ("username", "AKIAEP000000000002"),
            ("password", "ep-secret-2"),
        ])
        .set("AWS_ENDPOINT_URL_STS", &p.url)
        .region("eu-west-1")
        .run()
        .assert_succeeded();
    assert_eq!(p.requests().len(), 1);
}

#[test]
fn the_user_agent_names_product_version_and_task() {
    let p = proxy();
    E::new()
        .connection(&[
            ("username", "AKIAUA000000000001"),
            ("password", "ua-secret"),
        ])
        .region("eu-west-1")
        .endpoint(&p.url)
        .run()
        .assert_succeeded();
    let call = last_call(&p, "GetCallerIdentity");
    let ua = call
        .header("x-amz-user-agent")
        .or(call.header("user-agent"))
        .unwrap_or("");
    let want = format!(
        "app/aws-pipeline-tasks_{}_AwsWhoAmI",
        env!("CARGO_PKG_VERSION")
    );
    assert!(ua.contains(&want), "{ua}");
}

#[test]
fn an_empty_or_malformed_endpoint_setting_is_an_error_not_a_panic() {
    let keys = E::new()
        .set("AWS_ACCESS_KEY_ID", "AKIAEMPTY000000001")
        .set("AWS_SECRET_ACCESS_KEY", "empty-secret")
        .region("eu-west-1");
    keys.clone()
        .set("AWS_ENDPOINT_URL", "")
        .run()
        .assert_failed_with(
            "The environment variable AWS_ENDPOINT_URL is '', which is not a valid URL",
        );
    keys.clone()
        .set("AWS_ENDPOINT_URL_STS", "localhost:4566")
        .run()
        .assert_failed_with(
            "AWS_ENDPOINT_URL_STS is 'localhost:4566': the scheme must be http or https, not 'localhost'",
        );
    // A port that does not exist is an error, not port 80.
    keys.clone()
        .set("AWS_ENDPOINT_URL", "http://127.0.0.1:99999")
        .run()
        .assert_failed_with(
            "AWS_ENDPOINT_URL is 'http://127.0.0.1:99999', which is not a valid URL (invalid port number)",
        );
    E::new()
        .connection(&[
            ("username", "AKIAEMPTY000000002"),
            ("password", "empty-secret"),
        ])
        .set(&format!("ENDPOINT_DATA_{CONN}_ENDPOINTURL"), "s3.local")
        .region("eu-west-1")
        .run()
        .assert_failed_with(
            "The service connection's endpointUrl is 's3.local', which is not a valid URL",
        );
    E::new()
        .connection(&[
            ("username", "AKIAEMPTY000000003"),
            ("password", "empty-secret"),
        ])
        .set(&format!("ENDPOINT_DATA_{CONN}_ENDPOINTURL"), "https://s3.local:70000")
        .region("eu-west-1")
        .run()
        .assert_failed_with("endpointUrl is 'https://s3.local:70000', which is not a valid URL (invalid port number)");
}
