//! The agent machine's own identity: IMDSv2 through a local metadata server (moto's
//! does not echo the token TTL header, which the Rust SDK requires).

use std::sync::{Arc, Mutex};

use test_support::{HttpServer, Response, assert_no_leaks};

use crate::*;

const IMDS_KEY: &str = "ASIAIMDS0000000001";
const IMDS_SECRET: &str = "imds-secret-value";
const IMDS_TOKEN: &str = "imds-session-token-value";

fn imds(region: &'static str) -> HttpServer {
    let token: Arc<Mutex<Option<String>>> = Arc::default();
    HttpServer::start(move |req| {
        if req.method == "PUT" && req.path() == "/latest/api/token" {
            let Some(ttl) = req.header("x-aws-ec2-metadata-token-ttl-seconds") else {
                return Response::new(400, "missing ttl");
            };
            let t = "imds-api-token-1".to_string();
            *token.lock().unwrap() = Some(t.clone());
            return Response::new(200, t).header("x-aws-ec2-metadata-token-ttl-seconds", ttl);
        }
        let expected = token.lock().unwrap().clone();
        if req.method != "GET"
            || expected.is_none()
            || req.header("x-aws-ec2-metadata-token") != expected.as_deref()
        {
            return Response::new(401, "");
        }
        match req.path() {
            "/latest/meta-data/placement/region" => Response::new(200, region),
            "/latest/meta-data/iam/security-credentials/" => Response::new(200, "ci-role"),
            "/latest/meta-data/iam/security-credentials/ci-role" => Response::new(
                200,
                serde_json::json!({
                    "Code": "Success",
                    "LastUpdated": "2026-01-01T00:00:00Z",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": IMDS_KEY,
                    "SecretAccessKey": IMDS_SECRET,
                    "Token": IMDS_TOKEN,
                    "Expiration": "2099-01-01T00:00:00Z"
                })
                .to_string(),
            ),
            _ => Response::new(404, ""),
        }
    })
}

fn with_imds(server: &HttpServer) -> E {
    E::new()
        .set("AWS_EC2_METADATA_DISABLED", "false")
        .set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url)
}

#[test]
fn credentials_and_region_from_instance_metadata() {
    let server = imds("ap-southeast-2");
    let p = proxy();
    let run = with_imds(&server).endpoint(&p.url).run();
    run.assert_succeeded();
    assert_eq!(
        described(&run),
        "AWS credentials: the agent machine's own identity: EC2 instance metadata (IMDSv2); region ap-southeast-2 (EC2 instance metadata)"
    );
    let call = last_call(&p, "GetCallerIdentity");
    assert_eq!(
        signer(&call),
        Some((IMDS_KEY.into(), "ap-southeast-2".into()))
    );
    assert_eq!(call.header("x-amz-security-token"), Some(IMDS_TOKEN));
    assert_no_leaks(&run, &[IMDS_SECRET, IMDS_TOKEN]);
    let registered = run.registered_secrets();
    for s in [IMDS_SECRET, IMDS_TOKEN, IMDS_KEY] {
        assert!(registered.iter().any(|r| r == s), "{s} not registered");
    }

    let reqs = server.requests();
    assert!(
        reqs.iter().any(
            |r| r.method == "PUT" && r.header("x-aws-ec2-metadata-token-ttl-seconds").is_some()
        )
    );
    assert!(
        reqs.iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.header("x-aws-ec2-metadata-token").is_some())
    );
}

#[test]
fn a_region_input_beats_instance_metadata() {
    let server = imds("ap-southeast-2");
    let p = proxy();
    with_imds(&server)
        .region("sa-east-1")
        .endpoint(&p.url)
        .run()
        .assert_succeeded();
    assert_eq!(
        signer(&last_call(&p, "GetCallerIdentity")).unwrap().1,
        "sa-east-1"
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path().ends_with("placement/region"))
    );
}

#[test]
fn service_connection_role_without_keys_is_assumed_with_the_machine_identity() {
    let server = imds("eu-west-3");
    let p = proxy();
    let run = with_imds(&server)
        .connection(&[("assumeRoleArn", "arn:aws:iam::123456789012:role/from-imds")])
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    assert_eq!(signer(&last_call(&p, "AssumeRole")).unwrap().0, IMDS_KEY);
    assert!(described(&run).contains("using the agent machine's EC2 instance metadata (IMDSv2)"));
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/from-imds/aws-vsts-tools"
    );
}

/// The machine chain's other sources: a web identity token file (EKS, GitHub
/// style) and ECS container credentials.
#[test]
fn web_identity_token_file_alone() {
    let p = proxy();
    let dir = std::env::temp_dir().join(test_support::unique("wif"));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "web-identity-token-value").unwrap();
    let run = E::new()
        .set("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod-role")
        .set("AWS_ROLE_SESSION_NAME", "pod-session")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    let exchange = last_call(&p, "AssumeRoleWithWebIdentity");
    assert_eq!(
        form(&exchange, "WebIdentityToken").as_deref(),
        Some("web-identity-token-value")
    );
    assert_eq!(
        form(&exchange, "RoleSessionName").as_deref(),
        Some("pod-session")
    );
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/pod-role/pod-session"
    );
    assert!(described(&run).contains("the agent machine's own identity: web identity token file"));
}

#[test]
fn ecs_container_credentials_alone() {
    let ecs = HttpServer::start(|req| {
        if req.header("authorization") != Some("ecs-auth-token") {
            return Response::new(401, "");
        }
        Response::new(
            200,
            serde_json::json!({
                "AccessKeyId": "ASIAECS00000000001",
                "SecretAccessKey": "ecs-secret-value",
                "Token": "ecs-session-token",
                "Expiration": "2099-01-01T00:00:00Z"
            })
            .to_string(),
        )
    });
    let p = proxy();
    let run = E::new()
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/v2/credentials", ecs.url),
        )
        .set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token")
        .region("eu-west-1")
        .endpoint(&p.url)
        .run();
    run.assert_succeeded();
    assert_eq!(
        signer(&last_call(&p, "GetCallerIdentity")).unwrap().0,
        "ASIAECS00000000001"
    );
    assert!(described(&run).contains("ECS container credentials"));
    assert_no_leaks(&run, &["ecs-secret-value", "ecs-session-token"]);
}
