//! SDK configuration for reading state back from moto.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;

pub const REGION: &str = "us-east-1";

/// An SdkConfig for moto with the test credentials (loaded once, on a
/// thread of its own, so it can be asked for from anywhere).
pub fn sdk_config() -> SdkConfig {
    static CONFIG: std::sync::OnceLock<SdkConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            std::thread::spawn(|| {
                block_on(
                    aws_config::defaults(BehaviorVersion::latest())
                        .http_client(
                            aws_smithy_http_client::Builder::new()
                                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                                ))
                                .build_https(),
                        )
                        .endpoint_url(crate::moto())
                        .region(aws_config::Region::new(REGION))
                        .credentials_provider(Credentials::new(
                            "testing", "testing", None, None, "test",
                        ))
                        .load(),
                )
            })
            .join()
            .expect("loading the test SdkConfig")
        })
        .clone()
}

/// Runs a future to completion (tests are synchronous; tasks are processes).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
