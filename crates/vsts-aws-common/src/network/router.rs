//! The SDK's HTTP connector: each request goes direct or through the
//! proxy as `Proxy::route` decides, with the trust the agent configured.

use std::fmt;
use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;

use super::Inner;
use super::client::{Client, client, connector_error};
use super::diagnose::explain;
use super::proxy::Route;

/// Picks, for each request, the direct or the proxied connection.
pub(super) struct Router {
    net: Arc<Inner>,
    direct: Client,
    proxied: Option<Client>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Router")
    }
}

impl Router {
    pub(super) fn new(net: Arc<Inner>, settings: &HttpConnectorSettings) -> Self {
        let connect = settings.connect_timeout().unwrap_or(net.timeouts.connect);
        let tls = net.tls_config();
        let direct = client(tls.clone(), None, connect);
        let proxied = net.matcher.clone().map(|m| client(tls, Some(m), connect));
        Router {
            net,
            direct,
            proxied,
        }
    }
}

impl HttpConnector for Router {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri: http::Uri = match request.uri().parse() {
            Ok(u) => u,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e)))),
        };
        let mut request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e)))),
        };
        // The bypass list and metadata hosts first, then the proxy's own
        // rules (NO_PROXY, and the scheme with proxies from the environment).
        let intercept = match self.net.proxy.route(&uri) {
            Route::Proxied => self.net.matcher.as_ref().and_then(|m| m.intercept(&uri)),
            Route::Direct => None,
        };
        let client = match (&intercept, &self.proxied) {
            (Some(intercept), Some(proxied)) => {
                // Plain HTTP is sent to the proxy itself, so its credentials
                // go in the request (a tunnel carries them in its CONNECT).
                if uri.scheme() == Some(&http::uri::Scheme::HTTP)
                    && let Some(auth) = intercept.basic_auth()
                {
                    request
                        .headers_mut()
                        .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
                }
                proxied
            }
            _ => &self.direct,
        };
        let proxied = intercept.is_some();
        let proxy = self.net.proxy.shown();
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let future = client.request(request);
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
                Ok(resp) => {
                    let resp = resp.map(SdkBody::from_body_1_x);
                    aws_smithy_runtime_api::http::Response::try_from(resp)
                        .map_err(|e| ConnectorError::other(Box::new(e), None))
                }
                Err(e) => Err(explain(
                    connector_error(e),
                    proxied.then_some(proxy.as_str()),
                    &host,
                )),
            }
        })
    }
}
