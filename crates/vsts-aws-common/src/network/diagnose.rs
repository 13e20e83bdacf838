//! Network failures reworded to say which host failed and what to check
//! (the proxy, its credentials, the CA certificate).

use std::fmt;

use aws_smithy_runtime_api::client::result::ConnectorError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Network failures reworded to name the host and what to check. Other
/// errors pass through unchanged.
pub(super) fn explain(err: ConnectorError, proxy: Option<&str>, host: &str) -> ConnectorError {
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
