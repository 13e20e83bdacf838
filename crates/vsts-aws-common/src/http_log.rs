//! The `logRequest` / `logResponse` inputs: method, URI, status and headers
//! of every call, never a body, never a credential.

use aws_sdk_sts::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_sts::error::BoxError;
use vsts_task::Console;

/// Headers whose values are credentials or keys: shown as `<redacted>`.
const REDACTED: &[&str] = &[
    "authorization",
    "x-amz-security-token",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "cookie",
    "set-cookie",
];

#[derive(Debug, Clone)]
pub struct HttpLog {
    console: Console,
    request: bool,
    response: bool,
}

impl HttpLog {
    /// An interceptor for a client builder, or `None` when both are off.
    pub fn interceptor(
        console: &Console,
        request: bool,
        response: bool,
    ) -> Option<SharedInterceptor> {
        (request || response).then(|| {
            SharedInterceptor::new(HttpLog {
                console: console.clone(),
                request,
                response,
            })
        })
    }

    fn headers<'a>(&self, headers: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        let mut out = String::new();
        for (name, value) in headers {
            let shown = if REDACTED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                "<redacted>"
            } else {
                value
            };
            out.push_str(&format!("\n  {name}: {shown}"));
        }
        out
    }
}

impl Intercept for HttpLog {
    fn name(&self) -> &'static str {
        "HttpLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.request {
            let req = context.request();
            let uri = req.uri().split('?').next().unwrap_or("");
            self.console.info(&format!(
                "AWS request: {} {uri}{}",
                req.method(),
                self.headers(req.headers().iter())
            ));
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.response {
            let resp = context.response();
            self.console.info(&format!(
                "AWS response: {}{}",
                resp.status().as_u16(),
                self.headers(resp.headers().iter())
            ));
        }
        Ok(())
    }
}
