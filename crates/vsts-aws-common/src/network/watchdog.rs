//! Timeouts for every request a task sends, so that a server or proxy that
//! accepts a request and never answers cannot hold a task until the job's
//! timeout.
//!
//! - **Connect timeout** (`aws.connectTimeout`, default 10 s): TCP, proxy
//!   and TLS set-up. The SDK passes it to the connectors.
//! - **Read timeout** (`aws.readTimeout`, default 60 s): the longest time
//!   without progress while a request is in flight: no part of the request
//!   body taken by the network, no answer after the request was sent, no
//!   byte of the response body. It is idle time, not a limit on the whole
//!   exchange, so a large transfer on a slow link is never cut while bytes
//!   flow.
//!
//! Either one ends the attempt with a timeout, which the SDK retries as a
//! transient error. After the last attempt the error names the service, the
//! operation, the host, the timeout and the variable that sets it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Result, bail};
use aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use vsts_task::{Env, Variables};

pub const CONNECT_VARIABLE: &str = "aws.connectTimeout";
pub const READ_VARIABLE: &str = "aws.readTimeout";

/// The connect and read timeouts of a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The pipeline variables `aws.connectTimeout` and `aws.readTimeout`,
    /// in seconds (fractions allowed, from 0.1 to 3600).
    pub fn from_env(env: &Env) -> Result<Self> {
        let vars = Variables::new(env);
        let mut t = Timeouts::default();
        for (name, slot) in [
            (CONNECT_VARIABLE, &mut t.connect),
            (READ_VARIABLE, &mut t.read),
        ] {
            if let Some(raw) = vars.value(name) {
                *slot = seconds(name, raw.trim())?;
            }
        }
        Ok(t)
    }
}

fn seconds(name: &str, raw: &str) -> Result<Duration> {
    match raw.parse::<f64>() {
        Ok(s) if (0.1..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => bail!(
            "The variable {name} must be a number of seconds from 0.1 to 3600, such as 30 or 2.5 (got '{raw}')."
        ),
    }
}

/// What a request is, for timeout messages: `s3 PutObject`. Put on every
/// request by [`NameRequests`]; requests of the credential providers,
/// which have no such name, are named by method and host.
#[derive(Debug, Clone)]
struct OperationName(String);

/// The interceptor every client gets ([`crate::client!`]): names each
/// request with its service and operation.
#[derive(Debug)]
pub struct NameRequests;

impl Intercept for NameRequests {
    fn name(&self) -> &'static str {
        "NameRequests"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let name = OperationName(format!("{} {}", m.service(), m.name()));
            context.request_mut().add_extension(name);
        }
        Ok(())
    }
}

/// Applies the read timeout to every request of `inner`, and rewords the
/// connector's connect timeout.
#[derive(Debug)]
pub(crate) struct Watchdog {
    inner: SharedHttpConnector,
    connect: Duration,
    read: Duration,
}

impl Watchdog {
    pub(crate) fn new(inner: SharedHttpConnector, connect: Duration, read: Duration) -> Self {
        Watchdog {
            inner,
            connect,
            read,
        }
    }
}

/// Milliseconds since the request started at which it last made progress
/// (0: none yet).
#[derive(Debug, Clone)]
struct Clock {
    start: Instant,
    last: Arc<AtomicU64>,
}

impl Clock {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64 + 1;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Option<Instant> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.start + Duration::from_millis(ms - 1)),
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

impl HttpConnector for Watchdog {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let host = request
            .uri()
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .unwrap_or("")
            .to_string();
        let what = match request.extension::<OperationName>() {
            Some(OperationName(name)) => format!("{name} ({host})"),
            None => format!("{} {host}", request.method()),
        };
        let clock = Clock {
            start: Instant::now(),
            last: Arc::default(),
        };
        let body = std::mem::replace(request.body_mut(), SdkBody::taken());
        let sending = clock.clone();
        *request.body_mut() = body.map_preserve_contents(move |b| {
            SdkBody::from_body_1_x(Sending {
                inner: b,
                clock: sending.clone(),
            })
        });
        let (connect, read) = (self.connect, self.read);
        let inner = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            tokio::pin!(inner);
            loop {
                // Before any progress the connection may still be opening.
                let deadline = match clock.last() {
                    Some(last) => last + read,
                    None => clock.start + connect + read,
                };
                tokio::select! {
                    result = &mut inner => {
                        let mut response = result.map_err(|e| reword_connect_timeout(e, &what, connect))?;
                        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
                        *response.body_mut() = SdkBody::from_body_1_x(Receiving {
                            inner: body,
                            sleep: None,
                            read,
                            what,
                        });
                        return Ok(response);
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        let moved = clock.last().is_some_and(|last| last + read > Instant::now());
                        if !moved {
                            return Err(ConnectorError::timeout(
                                format!(
                                    "{what}: no answer for {} (read timeout; the pipeline variable {READ_VARIABLE} sets it)",
                                    secs(read)
                                )
                                .into(),
                            ));
                        }
                    }
                }
            }
        })
    }
}

fn reword_connect_timeout(e: ConnectorError, what: &str, connect: Duration) -> ConnectorError {
    if e.is_timeout() && crate::resolve::error_text(&e).contains("connect timeout") {
        ConnectorError::timeout(
            format!(
                "{what}: could not connect within {} (connect timeout; the pipeline variable {CONNECT_VARIABLE} sets it)",
                secs(connect)
            )
            .into(),
        )
    } else {
        e
    }
}

/// A request body that records each part the network takes.
struct Sending {
    inner: SdkBody,
    clock: Clock,
}

impl Body for Sending {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self.clock.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that fails when no byte arrives for the read timeout.
struct Receiving {
    inner: SdkBody,
    sleep: Option<Pin<Box<Sleep>>>,
    read: Duration,
    what: String,
}

impl Body for Receiving {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame);
        }
        let read = this.read;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(read)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.sleep = None;
                Poll::Ready(Some(Err(ConnectorError::timeout(
                    format!(
                        "{}: the response stopped: no data for {} (read timeout; the pipeline variable {READ_VARIABLE} sets it)",
                        this.what,
                        secs(read)
                    )
                    .into(),
                )
                .into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_come_from_pipeline_variables_in_seconds() {
        let t = Timeouts::from_env(&Env::from_pairs([
            ("AWS_CONNECTTIMEOUT", "2.5"),
            ("AWS_READTIMEOUT", "300"),
        ]))
        .unwrap();
        assert_eq!(t.connect, Duration::from_millis(2500));
        assert_eq!(t.read, Duration::from_secs(300));
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            Timeouts::from_env(&Env::from_pairs(none)).unwrap(),
            Timeouts::default()
        );
        for bad in ["0", "-1", "ten", "3601", "NaN"] {
            let e = Timeouts::from_env(&Env::from_pairs([("AWS_READTIMEOUT", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("aws.readTimeout") && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(secs(Duration::from_secs(60)), "60 s");
        assert_eq!(secs(Duration::from_millis(500)), "0.5 s");
    }
}
