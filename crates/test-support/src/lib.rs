//! What the integration tests share: the moto endpoint that `cargo xtask test`
//! started, small local HTTP servers (fake IMDSv2, fake Azure DevOps OIDC
//! token endpoint, a recording proxy in front of moto), a way to run a task
//! binary like the agent does, and the secret-leak scan.

mod aws;
pub mod beanstalk;
mod env;
mod faults;
mod http;
pub mod platform;
mod proxy;
pub mod registry;
mod run;
pub mod s3;
mod tls;

pub use aws::{REGION, block_on, sdk_config};
pub use env::{ADO_JOB_TOKEN, TaskEnv, ado_oidc};
pub use faults::{Fault, FirstOfEach, Protocol, fault_proxy};
pub use http::{HttpServer, Request, Response, faulty_proxy, forward_to, recording_proxy};
pub use proxy::ForwardProxy;
pub use run::{RunningTask, TaskRun, assert_no_leaks, run_task, spawn_task};
pub use tls::{ServerCert, TestCa, tls_front};

/// The moto server started by `cargo xtask test` (`MOTO_ENDPOINT`).
pub fn moto() -> String {
    std::env::var("MOTO_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "MOTO_ENDPOINT is not set: these tests need the local AWS that `cargo xtask test` \
             installs and starts. Run `cargo xtask test`."
            )
        })
}

/// A name no other test uses (moto is shared by all tests of a run).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
