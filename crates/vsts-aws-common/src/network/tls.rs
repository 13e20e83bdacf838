//! Trust: the system's roots, the agent's CA bundle (`AGENT_CAINFO`)
//! checked before use, and for `AGENT_SKIPCERTVALIDATION` a verifier that
//! accepts any certificate.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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

/// The TLS settings of every connection: the system's trusted roots plus
/// the agent's CA bundle, or (`AGENT_SKIPCERTVALIDATION`) no checks at all.
pub(super) fn client_config(ca_pem: Option<&[u8]>, skip_verify: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let config = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider
                    .signature_verification_algorithms
                    .supported_schemes(),
            )))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped, as curl and the
        // SDK's own client do; a bad AGENT_CAINFO was refused when read.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(pem) = ca_pem {
            roots.add_parsable_certificates(CertificateDer::pem_slice_iter(pem).flatten());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Arc::new(config)
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
