//! Plain HTTP calls outside the SDK's operations (the Azure DevOps OIDC
//! token request), on the same connectors as the SDK's clients
//! ([`Network`]): one proxy, bypass and TLS implementation for everything a
//! task sends.

use anyhow::{Context, Result, anyhow};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use crate::network::Network;

#[derive(Debug)]
pub struct Plain {
    connector: SharedHttpConnector,
}

impl Plain {
    pub fn new(network: &Network) -> Self {
        // The read timeout is applied by the network to every connector.
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(network.timeouts().connect)
            .build();
        Plain {
            connector: network.connector(&settings),
        }
    }

    /// POSTs a JSON body with a bearer token; returns the status and body.
    pub async fn post_json(&self, url: &str, bearer: &str, body: &str) -> Result<(u16, String)> {
        let mut req = HttpRequest::new(SdkBody::from(body.to_string()));
        req.set_method("POST").map_err(|e| anyhow!("{e}"))?;
        req.set_uri(url)
            .map_err(|e| anyhow!("'{url}' is not a URL: {e}"))?;
        let headers = req.headers_mut();
        headers.insert("Authorization", format!("Bearer {bearer}"));
        headers.insert("Content-Type", "application/json");
        headers.insert("Content-Length", body.len().to_string());
        let resp = self
            .connector
            .call(req)
            .await
            .map_err(|e| anyhow!("{}", crate::resolve::error_text(&e)))?;
        let status = resp.status().as_u16();
        let bytes = ByteStream::new(resp.into_body())
            .collect()
            .await
            .context("reading the response")?
            .into_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}
