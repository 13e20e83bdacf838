//! The agent's network settings, applied to every request a task sends (the
//! SDK's clients, the credential providers and the OIDC token request):
//!
//! - the agent's proxy (`AGENT_PROXYURL`, `AGENT_PROXYUSERNAME`,
//!   `SECRET_AGENT_PROXYPASSWORD`) and its bypass list
//!   (`AGENT_PROXYBYPASSLIST`: a JSON list of regular expressions, matched
//!   case-insensitively anywhere in the request URL, as task-lib does), plus
//!   `NO_PROXY`; without an agent proxy, the standard `HTTPS_PROXY`,
//!   `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`;
//! - extra trusted CA certificates (`AGENT_CAINFO`, a PEM bundle), on top of
//!   the system's roots;
//! - `AGENT_SKIPCERTVALIDATION`, honoured with a warning.
//!
//! Invariants: the proxy password (and the Basic credentials built from it)
//! is registered as a secret before anything is printed; the proxy URL is
//! only ever printed without credentials; instance and container metadata
//! addresses (link-local) never go through a proxy; a failure that is the
//! network's (proxy unreachable, 407, certificate rejected) says which host
//! and what to check.
//!
//! Where each concern lives: `proxy` (the proxy settings as read, and the
//! route each request takes), `tls` (the trusted roots, the CA bundle, and
//! the verifier that skips certificate checks), `client` (the HTTP/1.1
//! client and its connections: direct, forwarded or tunnelled, with TLS),
//! `router` (the SDK connector that picks the route for each request),
//! `diagnose` (network failures reworded to name what to check),
//! `watchdog` (connect and read timeouts).

mod client;
mod diagnose;
mod proxy;
mod router;
mod tls;
mod watchdog;

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine;
use hyper_util::client::proxy::matcher::Matcher;
use vsts_task::{Console, Env};

pub(crate) use proxy::without_userinfo;
use proxy::{Proxy, agent_proxy_url, bypass_list, split_credentials};
use router::Router;
use tls::{client_config, read_ca_bundle};
use watchdog::Watchdog;
pub use watchdog::{CONNECT_VARIABLE, NameRequests, READ_VARIABLE, Timeouts};

/// Connectors by (connect timeout, read timeout): one pool per setting.
type ConnectorCache = Mutex<Vec<((Option<Duration>, Option<Duration>), SharedHttpConnector)>>;

/// Everything a task's requests need to know about the network. Cheap to
/// clone; connectors (and their connection pools) are shared by clones.
#[derive(Clone)]
pub struct Network(Arc<Inner>);

struct Inner {
    proxy: Proxy,
    /// The proxy's rules as hyper-util's matcher (`NO_PROXY`, schemes).
    matcher: Option<Arc<Matcher>>,
    /// The agent's CA bundle, checked when read.
    ca_pem: Option<Vec<u8>>,
    ca_info: Option<(String, usize)>,
    skip_verify: bool,
    timeouts: Timeouts,
    /// Built on first use: loading the system's roots reads files.
    tls: OnceLock<Arc<rustls::ClientConfig>>,
    connectors: ConnectorCache,
}

impl Inner {
    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .get_or_init(|| client_config(self.ca_pem.as_deref(), self.skip_verify))
            .clone()
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Network")
    }
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes")
    })
}

impl Network {
    /// No proxy, the system's roots: what a test or a tool outside the agent
    /// gets when nothing is configured.
    pub fn direct() -> Self {
        Self::new(Proxy::None, None, false, Timeouts::default())
    }

    fn new(
        proxy: Proxy,
        ca: Option<(Vec<u8>, String, usize)>,
        skip: bool,
        timeouts: Timeouts,
    ) -> Self {
        let (ca_pem, ca_info) = match ca {
            Some((pem, path, count)) => (Some(pem), Some((path, count))),
            None => (None, None),
        };
        Network(Arc::new(Inner {
            matcher: proxy.matcher().map(Arc::new),
            proxy,
            ca_pem,
            ca_info,
            skip_verify: skip,
            timeouts,
            tls: OnceLock::new(),
            connectors: Mutex::new(Vec::new()),
        }))
    }

    /// Reads the agent's network settings. Registers the proxy password
    /// before printing anything; warns about ignored or unsafe settings.
    pub fn from_env(env: &Env, console: &Console) -> Result<Self> {
        let timeouts = Timeouts::from_env(env)?;
        let no_proxy = env.get("NO_PROXY").map(str::to_string);
        let proxy = match env.get("AGENT_PROXYURL") {
            Some(raw) => {
                let (url, in_url) = agent_proxy_url(raw)?;
                if let Some((_, p)) = &in_url {
                    console.set_secret(p);
                }
                let password = env
                    .get("SECRET_AGENT_PROXYPASSWORD")
                    .or_else(|| env.get("AGENT_PROXYPASSWORD"))
                    .map(str::to_string);
                if let Some(p) = &password {
                    console.set_secret(p);
                }
                let credentials = match env.get("AGENT_PROXYUSERNAME") {
                    Some(user) => Some((user.to_string(), password.unwrap_or_default())),
                    None => {
                        if password.is_some() {
                            console.warning(
                                "The agent has a proxy password but no proxy user name (AGENT_PROXYUSERNAME): \
                                 the proxy is used without credentials.",
                            );
                        }
                        in_url
                    }
                };
                if let Some((u, p)) = &credentials {
                    console.set_secret(
                        &base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")),
                    );
                }
                let bypass = env
                    .get("AGENT_PROXYBYPASSLIST")
                    .map(|raw| bypass_list(raw, console))
                    .unwrap_or_default();
                Proxy::Agent {
                    url,
                    credentials,
                    bypass,
                    no_proxy,
                }
            }
            None => {
                let mut shown = Vec::new();
                // `raw` falls back to any case: https_proxy is found too.
                for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
                    if let Some(v) = env.raw(name).filter(|v| !v.trim().is_empty()) {
                        let (url, credentials) = split_credentials(v.trim());
                        if let Some((_, p)) = &credentials
                            && !p.is_empty()
                        {
                            console.set_secret(p);
                        }
                        shown.push(format!("{name}={url}"));
                    }
                }
                if shown.is_empty() {
                    Proxy::None
                } else {
                    if let Some(n) = &no_proxy {
                        shown.push(format!("NO_PROXY={n}"));
                    }
                    Proxy::Environment {
                        shown: shown.join(", "),
                    }
                }
            }
        };
        let ca = match env.get("AGENT_CAINFO") {
            Some(path) => {
                let (pem, count) = read_ca_bundle(path)?;
                Some((pem, path.to_string(), count))
            }
            None => None,
        };
        let skip = truthy(env.get("AGENT_SKIPCERTVALIDATION"));
        if skip {
            console.warning(
                "The agent is configured to skip TLS certificate validation (AGENT_SKIPCERTVALIDATION): \
                 this task does not check who it talks to, so anyone on the network path can read and change \
                 its requests, credentials included. Configure the agent with its proxy's CA certificate \
                 (--sslcacert) instead.",
            );
        }
        Ok(Self::new(proxy, ca, skip, timeouts))
    }

    /// One line for the log, or nothing when the network is the default.
    /// Never contains a credential.
    pub fn describe(&self) -> Option<String> {
        let inner = &self.0;
        let mut parts = Vec::new();
        match &inner.proxy {
            Proxy::None => {}
            Proxy::Agent {
                url,
                credentials,
                bypass,
                no_proxy,
            } => {
                let mut p = format!("proxy {url} (agent)");
                if let Some((user, _)) = credentials {
                    p.push_str(&format!(", user '{user}'"));
                }
                if !bypass.is_empty() {
                    p.push_str(&format!(", {} bypass pattern(s)", bypass.len()));
                }
                if let Some(n) = no_proxy {
                    p.push_str(&format!(", NO_PROXY={n}"));
                }
                parts.push(p);
            }
            Proxy::Environment { shown } => {
                parts.push(format!("proxy from the environment ({shown})"))
            }
        }
        if let Some((path, n)) = &inner.ca_info {
            parts.push(format!(
                "{n} extra CA certificate(s) trusted from {path} (AGENT_CAINFO)"
            ));
        }
        if inner.skip_verify {
            parts.push("TLS certificates NOT verified (AGENT_SKIPCERTVALIDATION)".into());
        }
        (!parts.is_empty()).then(|| format!("Network: {}", parts.join("; ")))
    }

    /// The agent's proxy, with its credentials, as a URL for the tools a
    /// task starts (the AWS CLI, curl) in `HTTPS_PROXY` and friends; `None`
    /// without an agent proxy. The password was registered as a secret
    /// when the settings were read; its percent-encoded form is registered
    /// here before the URL is handed out.
    pub fn proxy_for_tools(&self, console: &Console) -> Option<String> {
        if let Some(encoded) = self.0.proxy.encoded_password() {
            console.set_secret(&encoded);
        }
        self.0.proxy.agent_url_with_credentials()
    }

    /// The connect and read timeouts of every request.
    pub fn timeouts(&self) -> Timeouts {
        self.0.timeouts
    }

    /// The HTTP client for the SDK (`ConfigLoader::http_client`).
    pub fn http_client(&self) -> SharedHttpClient {
        SharedHttpClient::new(self.clone())
    }

    /// A connector for plain requests outside the SDK's operations.
    pub fn connector(&self, settings: &HttpConnectorSettings) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cache = self.0.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let router = SharedHttpConnector::new(Router::new(self.0.clone(), settings));
        let t = &self.0.timeouts;
        let watched = SharedHttpConnector::new(Watchdog::new(
            router,
            settings.connect_timeout().unwrap_or(t.connect),
            t.read,
        ));
        cache.push((key, watched.clone()));
        watched
    }
}

impl HttpClient for Network {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_get_the_agent_proxy_with_encoded_credentials_registered() {
        let (console, out) = Console::capture(false);
        let env = Env::from_pairs([
            ("AGENT_PROXYURL", "http://proxy.corp:3128"),
            ("AGENT_PROXYUSERNAME", "builder"),
            ("SECRET_AGENT_PROXYPASSWORD", "p@ss:w"),
        ]);
        let net = Network::from_env(&env, &console).unwrap();
        assert_eq!(
            net.proxy_for_tools(&console).as_deref(),
            Some("http://builder:p%40ss%3Aw@proxy.corp:3128")
        );
        // '%' is escaped in a logging command.
        assert!(
            out.text()
                .contains("##vso[task.setsecret]p%AZP2540ss%AZP253Aw\n"),
            "{}",
            out.text()
        );
        let (console, _) = Console::capture(false);
        let env = Env::from_pairs([("HTTPS_PROXY", "http://other:8080")]);
        let net = Network::from_env(&env, &console).unwrap();
        assert_eq!(net.proxy_for_tools(&console), None);
    }

    #[test]
    fn credentials_in_the_proxy_url_are_registered_and_never_shown() {
        let (console, out) = Console::capture(false);
        let env = Env::from_pairs([
            ("AGENT_PROXYURL", "http://builder:url-pass@proxy.corp:3128"),
            ("HTTPS_PROXY", "http://other:env-pass@ignored:1"),
        ]);
        let net = Network::from_env(&env, &console).unwrap();
        let line = net.describe().unwrap();
        assert_eq!(
            line,
            "Network: proxy http://proxy.corp:3128 (agent), user 'builder'"
        );
        console.info(&line);
        let text = out.text();
        assert!(
            text.starts_with("##vso[task.setsecret]url-pass\n"),
            "{text}"
        );
        assert!(!text.contains("env-pass"), "the agent proxy wins: {text}");

        // Without the agent's proxy, the standard variables are described
        // without their credentials, which are registered.
        let (console, out) = Console::capture(false);
        let env = Env::from_pairs([("HTTPS_PROXY", "http://other:env-pass@proxy2:8080")]);
        let line = Network::from_env(&env, &console)
            .unwrap()
            .describe()
            .unwrap();
        assert_eq!(
            line,
            "Network: proxy from the environment (HTTPS_PROXY=http://proxy2:8080)"
        );
        assert!(out.text().contains("##vso[task.setsecret]env-pass"));
        assert!(
            Network::from_env(
                &Env::from_pairs::<[(&str, &str); 0], &str, &str>([]),
                &console
            )
            .unwrap()
            .describe()
            .is_none()
        );
    }
}
