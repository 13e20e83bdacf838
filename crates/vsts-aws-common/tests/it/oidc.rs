//! OIDC: a local server plays the Azure DevOps token endpoint; the token is
//! exchanged with sts:AssumeRoleWithWebIdentity on moto.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use test_support::{HttpServer, Response, assert_no_leaks};

use crate::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/oidc-deployer";
pub const JOB_TOKEN: &str = "job-access-token-xyz";
pub const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL29yZy9wcm9qL2NvbiJ9.c2ln";

/// A token endpoint that fails with `failures` before answering.
pub fn token_endpoint(failures: usize, status: u16) -> HttpServer {
    let calls = Arc::new(AtomicUsize::new(0));
    HttpServer::start(move |_req| {
        if calls.fetch_add(1, Ordering::SeqCst) < failures {
            Response::new(status, "unavailable")
        } else {
            Response::new(
                200,
                serde_json::json!({ "oidcToken": OIDC_TOKEN }).to_string(),
            )
            .header("Content-Type", "application/json")
        }
    })
}

pub fn oidc_env(ado: &HttpServer, sts: &HttpServer) -> E {
    E::new()
        .connection(&[
            ("assumeRoleArn", ROLE),
            ("useOIDC", "true"),
            ("roleSessionName", "oidc-sess"),
        ])
        .set(
            "SYSTEM_OIDCREQUESTURI",
            &format!(
                "{}/org/proj/_apis/distributedtask/hubs/build/plans/p1/jobs/j1/oidctoken",
                ado.url
            ),
        )
        .set(
            "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN",
            JOB_TOKEN,
        )
        .region("eu-central-1")
        .endpoint(&sts.url)
}

#[test]
fn oidc_token_is_requested_then_exchanged_for_the_role() {
    let ado = token_endpoint(0, 200);
    let sts = proxy();
    let run = oidc_env(&ado, &sts).run();
    run.assert_succeeded();

    let reqs = ado.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert!(req.path().ends_with("/jobs/j1/oidctoken"));
    assert!(
        req.target.contains(&format!("serviceConnectionId={CONN}")),
        "{}",
        req.target
    );
    assert!(req.target.contains("api-version=7.1"));
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {JOB_TOKEN}").as_str())
    );
    assert_eq!(req.body_text(), "{}");

    let (exchange, resp) = sts
        .exchanges()
        .into_iter()
        .find(|(r, _)| action(r) == "AssumeRoleWithWebIdentity")
        .expect("AssumeRoleWithWebIdentity was called");
    assert_eq!(
        form(&exchange, "WebIdentityToken").as_deref(),
        Some(OIDC_TOKEN)
    );
    assert_eq!(form(&exchange, "RoleArn").as_deref(), Some(ROLE));
    assert_eq!(
        form(&exchange, "RoleSessionName").as_deref(),
        Some("oidc-sess")
    );
    assert_eq!(
        caller(&run),
        "arn:aws:sts::123456789012:assumed-role/oidc-deployer/oidc-sess"
    );

    let secret = xml_tag(&resp.body, "SecretAccessKey").unwrap();
    let token = xml_tag(&resp.body, "SessionToken").unwrap();
    assert_no_leaks(&run, &[OIDC_TOKEN, JOB_TOKEN, &secret, &token]);
    let registered = run.registered_secrets();
    for s in [OIDC_TOKEN, JOB_TOKEN, secret.as_str(), token.as_str()] {
        assert!(registered.iter().any(|r| r == s), "{s} not registered");
    }
    assert!(described(&run).contains(&format!(
        "(OIDC token exchanged for role {ROLE}, session 'oidc-sess')"
    )));
}

#[test]
fn oidc_token_request_is_retried_on_server_errors() {
    let ado = token_endpoint(2, 503);
    let sts = proxy();
    let run = oidc_env(&ado, &sts).run();
    run.assert_succeeded();
    assert_eq!(ado.requests().len(), 3);
    assert!(run.stdout.contains("OIDC token request failed (HTTP 503"));
}

#[test]
fn oidc_token_refusal_is_final_and_clear() {
    let ado = token_endpoint(usize::MAX, 401);
    let sts = proxy();
    let run = oidc_env(&ado, &sts).run();
    run.assert_failed_with(&format!(
        "Azure DevOps refused the OIDC token request for service connection {CONN} (HTTP 401"
    ));
    assert_eq!(ado.requests().len(), 1, "a 401 is not retried");
    assert!(sts.requests().is_empty());
    assert_no_leaks(&run, &[JOB_TOKEN]);
}

/// STS refusing the token (a trust policy that does not match): the error
/// shows the claims the policy must allow, never the token.
#[test]
fn a_refused_token_names_its_claims() {
    let ado = token_endpoint(0, 200);
    let sts = test_support::faulty_proxy(&test_support::moto(), |req| {
        req.body_text()
            .contains("Action=AssumeRoleWithWebIdentity")
            .then(|| {
                test_support::Protocol::Query.error(
                    403,
                    "AccessDenied",
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                )
            })
    });
    let run = oidc_env(&ado, &sts).run();
    run.assert_failed_with(&format!(
        "sts:AssumeRoleWithWebIdentity for role {ROLE} failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity (HTTP 403). \
         The token presented: iss (none), aud (none), sub sc://org/proj/con; the role's trust policy must allow exactly these"
    ));
    assert_no_leaks(&run, &[JOB_TOKEN, OIDC_TOKEN]);
}

#[test]
fn oidc_falls_back_to_the_system_access_token_variable() {
    let ado = token_endpoint(0, 200);
    let sts = proxy();
    let mut e = oidc_env(&ado, &sts);
    e.0.retain(|(k, _)| !k.starts_with("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION"));
    e.set("SECRET_SYSTEM_ACCESSTOKEN", "from-variable")
        .run()
        .assert_succeeded();
    assert_eq!(
        ado.requests()[0].header("authorization"),
        Some("Bearer from-variable")
    );
}

#[test]
fn oidc_without_what_it_needs_says_so() {
    let ado = token_endpoint(0, 200);
    let sts = proxy();
    let mut e = oidc_env(&ado, &sts);
    e.0.retain(|(k, _)| k != "SYSTEM_OIDCREQUESTURI");
    e.run()
        .assert_failed_with("did not pass System.OidcRequestUri");

    let mut e = oidc_env(&ado, &sts);
    e.0.retain(|(k, _)| !k.starts_with("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION"));
    e.run()
        .assert_failed_with("Allow scripts to access the OAuth token");
    assert!(ado.requests().is_empty());
}
