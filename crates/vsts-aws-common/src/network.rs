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

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use base64::Engine;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use regex_lite::{Regex, RegexBuilder};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use vsts_task::{Console, Env};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connectors by (connect timeout, read timeout): one pool per setting.
type ConnectorCache = Mutex<Vec<((Option<Duration>, Option<Duration>), SharedHttpConnector)>>;

/// Everything a task's requests need to know about the network. Cheap to
/// clone; connectors (and their connection pools) are shared by clones.
#[derive(Clone)]
pub struct Network(Arc<Inner>);

struct Inner {
    proxy: Proxy,
    tls: TlsContext,
    ca_info: Option<(String, usize)>,
    skip_verify: bool,
    connectors: ConnectorCache,
}

enum Proxy {
    None,
    /// The agent's proxy: `url` has no credentials in it.
    Agent {
        url: String,
        credentials: Option<(String, String)>,
        bypass: Vec<Regex>,
        no_proxy: Option<String>,
    },
    /// `HTTPS_PROXY` and friends; `shown` is what to print (no credentials).
    Environment {
        shown: String,
    },
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

/// Splits `scheme://user:pass@host:port/...` into the URL without
/// credentials and the credentials.
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (
                format!("{scheme}://{host}{path}"),
                Some((percent_decode(user), percent_decode(pass))),
            )
        }
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The agent's proxy URL as a URL the HTTP client takes: a scheme is added
/// when missing (the agent accepts `proxy:8080`), credentials are split off.
fn agent_proxy_url(raw: &str) -> Result<(String, Option<(String, String)>)> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let (url, credentials) = split_credentials(&with_scheme);
    let scheme = url
        .split("://")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        bail!(
            "The agent's proxy URL (AGENT_PROXYURL) '{url}' is not supported: it must be an http:// or https:// URL."
        );
    }
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default();
    if host.is_empty() || url.parse::<http::Uri>().is_err() {
        bail!("The agent's proxy URL (AGENT_PROXYURL) '{url}' is not a URL.");
    }
    Ok((url.trim_end_matches('/').to_string(), credentials))
}

fn bypass_list(raw: &str, console: &Console) -> Vec<Regex> {
    let entries: Vec<String> = match serde_json::from_str(raw) {
        Ok(entries) => entries,
        Err(e) => {
            console.warning(&format!(
                "The agent's proxy bypass list (AGENT_PROXYBYPASSLIST) is not a JSON list of strings ({e}); \
                 it is ignored, so every request goes through the proxy."
            ));
            return Vec::new();
        }
    };
    entries
        .iter()
        .filter(|e| !e.trim().is_empty())
        .filter_map(|entry| {
            match RegexBuilder::new(entry.trim()).case_insensitive(true).build() {
                Ok(re) => Some(re),
                Err(e) => {
                    console.warning(&format!(
                        "The agent's proxy bypass entry '{entry}' is not a regular expression this task understands ({e}); \
                         it is ignored."
                    ));
                    None
                }
            }
        })
        .collect()
}

/// Reads and checks a PEM bundle; returns it and the number of certificates.
fn read_ca_bundle(path: &str) -> Result<(Vec<u8>, usize)> {
    let pem = std::fs::read(path).with_context(|| {
        format!("The agent's CA certificate file (AGENT_CAINFO) '{path}' cannot be read")
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow!("The agent's CA certificate file (AGENT_CAINFO) '{path}' is not a valid PEM bundle: {e}")
        })?;
    if certs.is_empty() {
        bail!(
            "The agent's CA certificate file (AGENT_CAINFO) '{path}' holds no certificate \
             (expected PEM blocks starting with -----BEGIN CERTIFICATE-----)."
        );
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            anyhow!(
                "Certificate {} in the agent's CA certificate file (AGENT_CAINFO) '{path}' cannot be used as a trust anchor: {e}",
                i + 1
            )
        })?;
    }
    Ok((pem, certs.len()))
}

impl Network {
    /// No proxy, the system's roots: what a test or a tool outside the agent
    /// gets when nothing is configured.
    pub fn direct() -> Self {
        Self::new(Proxy::None, TlsContext::default(), None, false)
    }

    fn new(proxy: Proxy, tls: TlsContext, ca_info: Option<(String, usize)>, skip: bool) -> Self {
        Network(Arc::new(Inner {
            proxy,
            tls,
            ca_info,
            skip_verify: skip,
            connectors: Mutex::new(Vec::new()),
        }))
    }

    /// Reads the agent's network settings. Registers the proxy password
    /// before printing anything; warns about ignored or unsafe settings.
    pub fn from_env(env: &Env, console: &Console) -> Result<Self> {
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
        let (tls, ca_info) = match env.get("AGENT_CAINFO") {
            Some(path) => {
                let (pem, count) = read_ca_bundle(path)?;
                let store = TrustStore::default().with_pem_certificate(pem);
                let tls = TlsContext::builder()
                    .with_trust_store(store)
                    .build()
                    .map_err(|e| anyhow!("AGENT_CAINFO '{path}': {e}"))?;
                (tls, Some((path.to_string(), count)))
            }
            None => (TlsContext::default(), None),
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
        Ok(Self::new(proxy, tls, ca_info, skip))
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
        cache.push((key, router.clone()));
        router
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

/// Picks, for each request, the direct or the proxied connection.
struct Router {
    net: Arc<Inner>,
    direct: Connector,
    proxied: Option<Connector>,
    insecure: Option<Insecure>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Router")
    }
}

enum Route {
    Direct,
    Proxied,
}

fn build_connector(
    settings: &HttpConnectorSettings,
    tls: &TlsContext,
    proxy: ProxyConfig,
) -> Connector {
    Connector::builder()
        .connector_settings(settings.clone())
        .proxy_config(proxy)
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls.clone())
        .build()
}

impl Router {
    fn new(net: Arc<Inner>, settings: &HttpConnectorSettings) -> Self {
        let direct = build_connector(settings, &net.tls, ProxyConfig::disabled());
        let proxy_config = match &net.proxy {
            Proxy::None => None,
            Proxy::Agent {
                url,
                credentials,
                no_proxy,
                ..
            } => {
                // The URL was checked when it was read.
                ProxyConfig::all(url.as_str()).ok().map(|mut config| {
                    if let Some((u, p)) = credentials {
                        // aws-smithy-http-client 1.5 pastes these into the
                        // proxy URL unencoded and hyper-util decodes them:
                        // encoded, a password with '@' or ':' survives.
                        config = config.with_basic_auth(encode_userinfo(u), encode_userinfo(p));
                    }
                    if let Some(n) = no_proxy {
                        config = config.no_proxy(n);
                    }
                    config
                })
            }
            Proxy::Environment { .. } => Some(ProxyConfig::from_env()),
        };
        let proxied = proxy_config.map(|pc| build_connector(settings, &net.tls, pc));
        let insecure = net
            .skip_verify
            .then(|| Insecure::new(settings, matcher(&net.proxy)));
        Router {
            net,
            direct,
            proxied,
            insecure,
        }
    }

    fn route(&self, uri: &http::Uri) -> Route {
        let host = uri.host().unwrap_or_default();
        if is_metadata_host(host) {
            return Route::Direct;
        }
        match &self.net.proxy {
            Proxy::None => Route::Direct,
            Proxy::Agent { bypass, .. } => {
                let url = uri.to_string();
                if bypass.iter().any(|re| re.is_match(&url)) {
                    Route::Direct
                } else {
                    Route::Proxied
                }
            }
            Proxy::Environment { .. } => Route::Proxied,
        }
    }

    fn proxy_url(&self) -> String {
        match &self.net.proxy {
            Proxy::None => String::new(),
            Proxy::Agent { url, .. } => format!("{url} (AGENT_PROXYURL)"),
            Proxy::Environment { shown } => format!("from the environment ({shown})"),
        }
    }
}

/// Instance metadata (169.254.169.254, fd00:ec2::254), ECS and EKS
/// container credentials (169.254.170.2, 169.254.170.23, fd00:ec2::23):
/// link-local addresses no proxy can reach.
fn is_metadata_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with("169.254.")
        || host.eq_ignore_ascii_case("fd00:ec2::254")
        || host.eq_ignore_ascii_case("fd00:ec2::23")
}

impl HttpConnector for Router {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri: http::Uri = match request.uri().parse() {
            Ok(u) => u,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e)))),
        };
        let route = self.route(&uri);
        let proxied = matches!(route, Route::Proxied);
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let proxy = self.proxy_url();
        let https = uri.scheme_str() == Some("https");
        let future = match (&self.insecure, https, route) {
            (Some(insecure), true, route) => insecure.call(request, &uri, route),
            (_, _, Route::Proxied) => self.proxied.as_ref().unwrap_or(&self.direct).call(request),
            (_, _, Route::Direct) => self.direct.call(request),
        };
        HttpConnectorFuture::new(async move {
            match future.await {
                Ok(resp) if proxied && resp.status().as_u16() == 407 => {
                    Err(ConnectorError::other(
                        format!(
                            "The proxy {proxy} refused this task's credentials for {host} \
                             (407 Proxy Authentication Required): check the agent's proxy user name \
                             (AGENT_PROXYUSERNAME) and password."
                        )
                        .into(),
                        None,
                    ))
                }
                Ok(resp) => Ok(resp),
                Err(e) => Err(explain(e, proxied.then_some(proxy.as_str()), &host)),
            }
        })
    }
}

/// Network failures reworded to name the host and what to check. Other
/// errors pass through unchanged.
fn explain(err: ConnectorError, proxy: Option<&str>, host: &str) -> ConnectorError {
    let mut texts = Vec::new();
    let mut tls_error = None;
    let mut connect = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        texts.push(e.to_string());
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            tls_error = Some(t.to_string());
        }
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            connect |= h.is_connect();
        }
        // An io::Error's `source` skips the error it wraps: look inside.
        source = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    let chain = texts.join(": ");
    let has = |needle: &str| chain.contains(needle);
    let (message, retry) = if let Some(t) = tls_error {
        (
            format!(
                "The TLS certificate presented for {host} was not accepted ({t}). If this network inspects TLS \
                 traffic, give the agent the CA certificate it uses (AGENT_CAINFO: configure the agent with \
                 --sslcacert); otherwise check that {host} is the right endpoint."
            ),
            false,
        )
    } else if let Some(proxy) = proxy.filter(|_| has("proxy authorization required")) {
        (
            format!(
                "The proxy {proxy} refused this task's credentials for {host} (407 Proxy Authentication \
                 Required): check the agent's proxy user name (AGENT_PROXYUSERNAME) and password."
            ),
            false,
        )
    } else if let Some(proxy) = proxy.filter(|_| has("tunnel error: unsuccessful")) {
        (
            format!(
                "The proxy {proxy} did not open a connection to {host}: check that the proxy allows this \
                 host, or add it to the agent's proxy bypass list."
            ),
            true,
        )
    } else if let Some(proxy) = proxy.filter(|_| connect) {
        (
            format!(
                "Could not connect to the proxy {proxy} to reach {host}: check that the proxy is running \
                 and reachable from the agent, or add {host} to the agent's proxy bypass list."
            ),
            true,
        )
    } else {
        return err;
    };
    let wrapped: BoxError = Box::new(Explained {
        message,
        source: err,
    });
    if retry {
        ConnectorError::io(wrapped)
    } else {
        ConnectorError::other(wrapped, None)
    }
}

#[derive(Debug)]
struct Explained {
    message: String,
    source: ConnectorError,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause follows after a colon.
        f.write_str(self.message.trim_end_matches('.'))
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The proxy rules as hyper-util's matcher (used by the connector that
/// skips certificate validation).
fn matcher(proxy: &Proxy) -> Option<Matcher> {
    match proxy {
        Proxy::None => None,
        Proxy::Agent {
            url,
            credentials,
            no_proxy,
            ..
        } => {
            let with_auth = match credentials {
                Some((u, p)) => {
                    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
                    format!(
                        "{scheme}://{}:{}@{rest}",
                        encode_userinfo(u),
                        encode_userinfo(p)
                    )
                }
                None => url.clone(),
            };
            Some(
                Matcher::builder()
                    .all(with_auth)
                    .no(no_proxy.clone().unwrap_or_default())
                    .build(),
            )
        }
        Proxy::Environment { .. } => Some(Matcher::from_env()),
    }
}

fn encode_userinfo(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

type InsecureClient<C> = Client<hyper_rustls::HttpsConnector<C>, SdkBody>;

/// HTTPS without certificate checks, for `AGENT_SKIPCERTVALIDATION` only:
/// direct, or through the proxy's CONNECT tunnel.
struct Insecure {
    config: Arc<rustls::ClientConfig>,
    tcp: TcpConnector,
    matcher: Option<Matcher>,
    direct: InsecureClient<TcpConnector>,
    tunnel: OnceLock<InsecureClient<Tunnel<TcpConnector>>>,
}

impl Insecure {
    fn new(settings: &HttpConnectorSettings, matcher: Option<Matcher>) -> Self {
        let config = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                rustls::crypto::ring::default_provider()
                    .signature_verification_algorithms
                    .supported_schemes(),
            )))
            .with_no_client_auth(),
        );
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(settings.connect_timeout());
        let direct = Self::client(&config, tcp.clone());
        Insecure {
            config,
            tcp,
            matcher,
            direct,
            tunnel: OnceLock::new(),
        }
    }

    fn client<C>(config: &Arc<rustls::ClientConfig>, inner: C) -> InsecureClient<C>
    where
        C: Clone,
        hyper_rustls::HttpsConnector<C>: hyper_util::client::legacy::connect::Connect,
    {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((**config).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(inner);
        Client::builder(TokioExecutor::new()).build(https)
    }

    /// `route` is the router's decision (bypass list, metadata hosts); a
    /// proxied request still honours `NO_PROXY` through the matcher, as
    /// the verifying connector does.
    fn call(&self, request: HttpRequest, uri: &http::Uri, route: Route) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e)))),
        };
        let intercept = match route {
            Route::Direct => None,
            Route::Proxied => self.matcher.as_ref().and_then(|m| m.intercept(uri)),
        };
        let response = match intercept {
            Some(intercept) => {
                let client = self.tunnel.get_or_init(|| {
                    let mut tunnel = Tunnel::new(intercept.uri().clone(), self.tcp.clone());
                    if let Some(auth) = intercept.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Self::client(&self.config, tunnel)
                });
                client.request(request)
            }
            None => self.direct.request(request),
        };
        HttpConnectorFuture::new(async move {
            let response = response
                .await
                .map_err(|e| ConnectorError::io(Box::new(e)))?;
            let response = response.map(SdkBody::from_body_1_x);
            aws_smithy_runtime_api::http::Response::try_from(response)
                .map_err(|e| ConnectorError::other(Box::new(e), None))
        })
    }
}

#[derive(Debug)]
struct AcceptAnyCertificate(Vec<rustls::SignatureScheme>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_the_proxy_url() {
        assert_eq!(
            split_credentials("http://bob:p%40ss@proxy:3128/"),
            (
                "http://proxy:3128/".to_string(),
                Some(("bob".to_string(), "p@ss".to_string()))
            )
        );
        assert_eq!(
            split_credentials("http://proxy:3128"),
            ("http://proxy:3128".to_string(), None)
        );
    }

    #[test]
    fn agent_proxy_url_gets_a_scheme_and_is_checked() {
        assert_eq!(
            agent_proxy_url("proxy.corp:8080").unwrap().0,
            "http://proxy.corp:8080"
        );
        assert_eq!(
            agent_proxy_url(" https://proxy.corp/ ").unwrap().0,
            "https://proxy.corp"
        );
        let e = agent_proxy_url("socks5://proxy:1080")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AGENT_PROXYURL") && e.contains("http://"), "{e}");
        let e = agent_proxy_url("http://").unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn bypass_entries_match_like_task_lib() {
        let (console, _out) = Console::capture(false);
        let list = bypass_list(
            r#"["\\.internal\\.corp$", "S3\\.EU-WEST-1", "(["]"#,
            &console,
        );
        assert_eq!(list.len(), 2, "the bad entry is dropped");
        let matches = |url: &str| list.iter().any(|re| re.is_match(url));
        assert!(matches("https://s3.eu-west-1.amazonaws.com/bucket"));
        assert!(matches("http://git.internal.corp"));
        assert!(!matches("https://sts.amazonaws.com/"));
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

    #[test]
    fn metadata_addresses_are_never_proxied() {
        for host in [
            "169.254.169.254",
            "169.254.170.2",
            "[fd00:ec2::254]",
            "fd00:ec2::23",
        ] {
            assert!(is_metadata_host(host), "{host}");
        }
        assert!(!is_metadata_host("127.0.0.1"));
        assert!(!is_metadata_host("sts.amazonaws.com"));
    }
}
