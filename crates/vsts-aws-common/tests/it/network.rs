//! The agent's network settings, with a real forward proxy (proxy.py) on
//! loopback in front of moto, and HTTPS endpoints whose certificates are
//! signed by a CA the test makes up.

use test_support::{ForwardProxy, TaskRun, TestCa, assert_no_leaks, moto, tls_front};

use crate::*;

/// `host:port` of a URL.
fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string()
}

/// Static keys and moto (or `endpoint`), with no NO_PROXY from the harness.
fn keys(endpoint: &str) -> E {
    E::new()
        .connection(&[
            ("username", "AKIANET0000000000001"),
            ("password", "net-secret"),
        ])
        .region("eu-west-1")
        .endpoint(endpoint)
        .set("NO_PROXY", "")
}

/// A loopback port nothing listens on.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn network_line(run: &TaskRun) -> String {
    run.plain()
        .iter()
        .find(|l| l.starts_with("Network: "))
        .map(|l| l.to_string())
        .unwrap_or_else(|| panic!("no Network line in output:\n{}", run.stdout))
}

#[test]
fn every_request_goes_through_the_agent_proxy() {
    let proxy = ForwardProxy::start(None);
    let moto = moto();
    let run = keys(&moto).set("AGENT_PROXYURL", &proxy.url).run();
    run.assert_succeeded();
    assert_eq!(
        network_line(&run),
        format!("Network: proxy {} (agent)", proxy.url)
    );
    let seen = proxy.requests_to(&host_port(&moto));
    assert!(
        seen.iter().any(|l| l.contains(" - POST ")),
        "the proxy saw no POST to moto: {seen:?}\nproxy log: {:?}",
        proxy.access_log()
    );
}

#[test]
fn proxy_basic_auth_works_and_the_password_stays_secret() {
    let password = "pr0xy-p@ss;word";
    let proxy = ForwardProxy::start(Some(&format!("builder:{password}")));
    let moto = moto();
    let run = keys(&moto)
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", password)
        .run();
    run.assert_succeeded();
    assert_eq!(
        network_line(&run),
        format!("Network: proxy {} (agent), user 'builder'", proxy.url)
    );
    assert!(!proxy.requests_to(&host_port(&moto)).is_empty());
    assert!(run.registered_secrets().contains(&password.to_string()));
    assert_no_leaks(&run, &[password, "net-secret"]);
}

#[test]
fn a_wrong_proxy_password_fails_clearly_without_printing_it() {
    let proxy = ForwardProxy::start(Some("builder:right-password"));
    let run = keys(&moto())
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "wrong-password-123")
        .run();
    run.assert_failed_with("407 Proxy Authentication Required");
    run.assert_failed_with(&format!("The proxy {} (AGENT_PROXYURL)", proxy.url));
    run.assert_failed_with("AGENT_PROXYUSERNAME");
    assert_no_leaks(&run, &["wrong-password-123"]);
}

#[test]
fn an_unreachable_proxy_names_itself_and_what_to_check() {
    let dead = closed_port_url();
    let moto = moto();
    let run = keys(&moto).set("AGENT_PROXYURL", &dead).run();
    run.assert_failed_with(&format!(
        "Could not connect to the proxy {dead} (AGENT_PROXYURL) to reach {}",
        host_port(&moto)
    ));
    run.assert_failed_with("bypass list");
}

/// The bypass list decides before the proxy is tried: with a proxy that
/// cannot be reached, a matching entry is the only way to succeed.
#[test]
fn bypass_list_matches_go_direct() {
    let dead = closed_port_url();
    let moto = moto();
    let port = moto.rsplit(':').next().unwrap().to_string();
    let bypass = serde_json::json!(["\\.internal\\.example$", format!("127\\.0\\.0\\.1:{port}")]);
    let run = keys(&moto)
        .set("AGENT_PROXYURL", &dead)
        .set("AGENT_PROXYBYPASSLIST", &bypass.to_string())
        .run();
    run.assert_succeeded();
    assert!(network_line(&run).contains("2 bypass pattern(s)"));

    // Case-insensitive, as task-lib's `new RegExp(entry, 'i')`.
    let run = keys(&moto.replace("127.0.0.1", "LOCALHOST"))
        .set("AGENT_PROXYURL", &dead)
        .set("AGENT_PROXYBYPASSLIST", r#"["^HTTP://localhost:"]"#)
        .run();
    run.assert_succeeded();

    // A list that does not match: the dead proxy is tried.
    let run = keys(&moto)
        .set("AGENT_PROXYURL", &dead)
        .set("AGENT_PROXYBYPASSLIST", r#"["\\.internal\\.example$"]"#)
        .run();
    run.assert_failed_with("Could not connect to the proxy");
}

#[test]
fn a_bad_bypass_list_is_a_warning_not_a_failure() {
    let proxy = ForwardProxy::start(None);
    let run = keys(&moto())
        .set("AGENT_PROXYURL", &proxy.url)
        .set(
            "AGENT_PROXYBYPASSLIST",
            r#"["(unclosed", "fine\\.example"]"#,
        )
        .run();
    run.assert_warned("bypass entry '(unclosed' is not a regular expression");
    assert!(network_line(&run).contains("1 bypass pattern(s)"));
}

#[test]
fn no_proxy_is_honoured_with_the_agent_proxy_too() {
    let run = keys(&moto())
        .set("AGENT_PROXYURL", &closed_port_url())
        .set("NO_PROXY", "localhost,127.0.0.1")
        .run();
    run.assert_succeeded();
}

#[test]
fn without_an_agent_proxy_the_standard_variables_apply() {
    let proxy = ForwardProxy::start(None);
    let moto = moto();
    let run = keys(&moto).set("HTTP_PROXY", &proxy.url).run();
    run.assert_succeeded();
    assert_eq!(
        network_line(&run),
        format!(
            "Network: proxy from the environment (HTTP_PROXY={})",
            proxy.url
        )
    );
    assert!(!proxy.requests_to(&host_port(&moto)).is_empty());

    // NO_PROXY still wins over HTTP_PROXY.
    let run = keys(&moto)
        .set("HTTP_PROXY", &closed_port_url())
        .set("NO_PROXY", "127.0.0.1")
        .run();
    run.assert_succeeded();
}

#[test]
fn the_oidc_token_request_goes_through_the_proxy() {
    let proxy = ForwardProxy::start(Some("builder:oidc-proxy-pass"));
    let ado = crate::oidc::token_endpoint(0, 200);
    let sts = crate::proxy();
    let run = crate::oidc::oidc_env(&ado, &sts)
        .set("NO_PROXY", "")
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "oidc-proxy-pass")
        .run();
    run.assert_succeeded();
    let token_calls = proxy.requests_to(&host_port(&ado.url));
    assert!(
        token_calls.iter().any(|l| l.contains(" - POST ")),
        "{token_calls:?}"
    );
    assert!(!proxy.requests_to(&host_port(&sts.url)).is_empty());
    assert_no_leaks(
        &run,
        &[
            "oidc-proxy-pass",
            crate::oidc::JOB_TOKEN,
            crate::oidc::OIDC_TOKEN,
        ],
    );
}

#[test]
fn an_unknown_certificate_authority_is_refused_with_advice() {
    let ca = TestCa::new("refused");
    let front = tls_front(&ca, &moto());
    let run = keys(&front.url).run();
    run.assert_failed_with(&format!(
        "The TLS certificate presented for {} was not accepted",
        host_port(&front.url)
    ));
    run.assert_failed_with("AGENT_CAINFO");
    assert!(front.requests().is_empty(), "no request got through");
}

#[test]
fn agent_cainfo_is_trusted_in_addition_to_the_system_roots() {
    let ca = TestCa::new("trusted");
    let front = tls_front(&ca, &moto());
    let run = keys(&front.url)
        .set("AGENT_CAINFO", ca.pem_path.to_str().unwrap())
        .run();
    run.assert_succeeded();
    assert!(
        network_line(&run).contains(&format!(
            "1 extra CA certificate(s) trusted from {} (AGENT_CAINFO)",
            ca.pem_path.display()
        )),
        "{}",
        network_line(&run)
    );
    assert!(front.requests().iter().any(|r| r.method == "POST"));
}

#[test]
fn https_through_an_authenticating_proxy_tunnel() {
    let ca = TestCa::new("tunnel");
    let front = tls_front(&ca, &moto());
    let proxy = ForwardProxy::start(Some("builder:tunnel-pass"));
    let run = keys(&front.url)
        .set("AGENT_CAINFO", ca.pem_path.to_str().unwrap())
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "tunnel-pass")
        .run();
    run.assert_succeeded();
    let tunnels = proxy.requests_to(&host_port(&front.url));
    assert!(
        tunnels.iter().any(|l| l.contains(" - CONNECT ")),
        "{tunnels:?}"
    );
    assert!(!front.requests().is_empty());

    // The same tunnel with the wrong password: a 407 on CONNECT.
    let run = keys(&front.url)
        .set("AGENT_CAINFO", ca.pem_path.to_str().unwrap())
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "not-the-tunnel-pass")
        .run();
    run.assert_failed_with("407 Proxy Authentication Required");
    assert_no_leaks(&run, &["not-the-tunnel-pass"]);
}

#[test]
fn skip_cert_validation_is_honoured_with_a_warning() {
    let ca = TestCa::new("skipped");
    let front = tls_front(&ca, &moto());
    let run = keys(&front.url)
        .set("AGENT_SKIPCERTVALIDATION", "True")
        .run();
    run.assert_warned("(AGENT_SKIPCERTVALIDATION): this task does not check who it talks to")
        .assert_warned("(--sslcacert)");
    assert!(network_line(&run).contains("TLS certificates NOT verified"));
    assert!(!front.requests().is_empty());

    // Through the proxy's tunnel as well.
    let proxy = ForwardProxy::start(Some("builder:skip-pass"));
    let run = keys(&front.url)
        .set("AGENT_SKIPCERTVALIDATION", "true")
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "skip-pass")
        .run();
    run.assert_warned("AGENT_SKIPCERTVALIDATION");
    assert!(
        proxy
            .requests_to(&host_port(&front.url))
            .iter()
            .any(|l| l.contains(" - CONNECT "))
    );
    assert_no_leaks(&run, &["skip-pass"]);
}

/// Not checking certificates must not change where requests go: a bypass
/// entry still sends them direct, past a proxy that cannot be reached.
#[test]
fn the_bypass_list_holds_when_certificates_are_not_checked() {
    let ca = TestCa::new("skipped-bypass");
    let front = tls_front(&ca, &moto());
    let entry = format!("^https://{}", host_port(&front.url).replace('.', "\\."));
    let bypass = serde_json::json!([entry]);
    let run = keys(&front.url)
        .set("AGENT_SKIPCERTVALIDATION", "true")
        .set("AGENT_PROXYURL", &closed_port_url())
        .set("AGENT_PROXYBYPASSLIST", &bypass.to_string())
        .run();
    // Succeeded, with the warning that certificates are not checked.
    assert_eq!(
        run.result().as_deref(),
        Some("SucceededWithIssues"),
        "{}",
        run.stdout
    );
    run.assert_warned("AGENT_SKIPCERTVALIDATION");
    assert!(!front.requests().is_empty());

    // And a request the list does not match still goes to the proxy.
    let run = keys(&front.url)
        .set("AGENT_SKIPCERTVALIDATION", "true")
        .set("AGENT_PROXYURL", &closed_port_url())
        .set("AGENT_PROXYBYPASSLIST", r#"["\\.internal\\.example$"]"#)
        .run();
    run.assert_failed_with("Could not connect to the proxy");
}

#[test]
fn bad_network_settings_are_named() {
    let dir = std::env::temp_dir().join(test_support::unique("badca"));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "just text").unwrap();
    let cases: Vec<(Pairs, &str)> = vec![
        (
            vec![("AGENT_CAINFO", "/nonexistent/ca.pem")],
            "The agent's CA certificate file (AGENT_CAINFO) '/nonexistent/ca.pem' cannot be read",
        ),
        (
            vec![("AGENT_CAINFO", not_pem.to_str().unwrap())],
            "holds no certificate",
        ),
        (
            vec![("AGENT_PROXYURL", "socks5://127.0.0.1:1080")],
            "must be an http:// or https:// URL",
        ),
    ];
    for (env, message) in cases {
        let mut e = keys(&moto());
        for (k, v) in env {
            e = e.set(k, v);
        }
        e.run().assert_failed_with(message);
    }
}

/// A server that accepts connections and never says a word: TLS cannot
/// start. The connect timeout covers the handshake, not only TCP, and its
/// message names the variable that sets it.
#[test]
fn a_silent_server_fails_on_the_connect_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", silent.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in silent.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let started = std::time::Instant::now();
    let run = keys(&url).set("AWS_CONNECTTIMEOUT", "0.5").run();
    run.assert_failed_with(&format!(
        "{}: could not connect within 0.5 s (connect timeout; the pipeline variable aws.connectTimeout sets it)",
        host_port(&url)
    ));
    // Retried as a transient failure, then given up well before the read
    // timeout (60 s) would have ended it.
    assert!(held.lock().unwrap().len() >= 2, "not retried");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
