//! A certificate authority made up by the tests, and HTTPS servers whose
//! certificates it signs: to prove that AGENT_CAINFO is trusted, that an
//! unknown CA is refused, and that AGENT_SKIPCERTVALIDATION skips the check.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::HttpServer;

/// A CA with its certificate written to a PEM file (for AGENT_CAINFO).
pub struct TestCa {
    pub pem_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = std::env::temp_dir().join(crate::unique("ca"));
        std::fs::create_dir_all(&dir).unwrap();
        let pem_path = dir.join("ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        TestCa {
            pem_path,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server_cert(&self) -> ServerCert {
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert: cert.der().to_vec(),
            key: key.serialize_der(),
        }
    }
}

pub struct ServerCert {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl ServerCert {
    pub(crate) fn config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.clone().into()),
            )
            .unwrap();
        Arc::new(config)
    }
}

/// An HTTPS endpoint (`https://localhost:<port>`, certificate signed by
/// `ca`) that forwards every request to `upstream` (moto) and records it.
pub fn tls_front(ca: &TestCa, upstream: &str) -> HttpServer {
    let upstream = upstream.to_string();
    HttpServer::start_tls(&ca.server_cert(), move |req| {
        crate::http::forward_to(&upstream, req)
    })
}
