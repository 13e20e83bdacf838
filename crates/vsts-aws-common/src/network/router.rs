//! The SDK's HTTP connector: each request goes direct or through the
//! proxy as `Proxy::route` decides, with the trust the agent configured.

use std::fmt;
use std::sync::Arc;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;

use super::Inner;
use super::diagnose::explain;
use super::proxy::{Proxy, Route, encode_userinfo};
use super::tls::Insecure;

/// Picks, for each request, the direct or the proxied connection.
pub(super) struct Router {
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
    pub(super) fn new(net: Arc<Inner>, settings: &HttpConnectorSettings) -> Self {
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
            .then(|| Insecure::new(settings, net.proxy.matcher()));
        Router {
            net,
            direct,
            proxied,
            insecure,
        }
    }
}

impl HttpConnector for Router {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri: http::Uri = match request.uri().parse() {
            Ok(u) => u,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e)))),
        };
        let route = self.net.proxy.route(&uri);
        let proxied = matches!(route, Route::Proxied);
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let proxy = self.net.proxy.shown();
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
