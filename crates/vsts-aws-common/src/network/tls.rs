//! Trust: the agent's CA bundle (`AGENT_CAINFO`) checked before use, and
//! the connector for `AGENT_SKIPCERTVALIDATION` that accepts any
//! certificate (direct, or through the proxy's CONNECT tunnel).

use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use aws_smithy_runtime_api::client::http::{HttpConnectorFuture, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::proxy::Route;

/// Reads and checks a PEM bundle; returns it and the number of certificates.
pub(super) fn read_ca_bundle(path: &str) -> Result<(Vec<u8>, usize)> {
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

type InsecureClient<C> = Client<hyper_rustls::HttpsConnector<C>, SdkBody>;

/// HTTPS without certificate checks, for `AGENT_SKIPCERTVALIDATION` only:
/// direct, or through the proxy's CONNECT tunnel.
pub(super) struct Insecure {
    config: Arc<rustls::ClientConfig>,
    tcp: TcpConnector,
    matcher: Option<Matcher>,
    direct: InsecureClient<TcpConnector>,
    tunnel: OnceLock<InsecureClient<Tunnel<TcpConnector>>>,
}

impl Insecure {
    pub(super) fn new(settings: &HttpConnectorSettings, matcher: Option<Matcher>) -> Self {
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
    pub(super) fn call(
        &self,
        request: HttpRequest,
        uri: &http::Uri,
        route: Route,
    ) -> HttpConnectorFuture {
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
