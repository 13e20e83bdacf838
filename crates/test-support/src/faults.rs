//! What real networks and services do to requests, injected by a proxy in
//! front of moto: throttling in each protocol the tasks speak, server
//! errors, dropped connections, bodies cut short, requests never answered,
//! answers that stop half way, and a slow trickle of bytes.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{HttpServer, Request, Response, forward_to};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling answer, in the request's protocol.
    Throttle,
    /// 500, with the protocol's internal-error body.
    ServerError,
    /// 503.
    Unavailable,
    /// The connection closes before any answer.
    Drop,
    /// The real answer, its body cut half way and the connection closed.
    CutBody,
    /// No answer at all; the connection stays open.
    Hang,
    /// The real answer's headers and half its body, then silence.
    Stall,
    /// The real answer, 16 bytes every 10 ms: slow but moving.
    Trickle,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::Drop,
        Fault::CutBody,
        Fault::Hang,
        Fault::Stall,
        Fault::Trickle,
    ];

    /// Whether a client needs its read timeout to get past this fault.
    pub fn needs_read_timeout(self) -> bool {
        matches!(self, Fault::Hang | Fault::Stall)
    }

    /// The answer `req` gets under this fault; `upstream` serves the real one.
    pub fn answer(self, req: &Request, upstream: &str) -> Response {
        let protocol = Protocol::of(req);
        match self {
            Fault::Throttle => protocol.throttling(),
            Fault::ServerError => protocol.error(500, "InternalFailure", "injected server error"),
            Fault::Unavailable => {
                protocol.error(503, "ServiceUnavailable", "injected: service unavailable")
            }
            Fault::Drop => Response::drop_connection(),
            Fault::Hang => Response::never(),
            Fault::CutBody | Fault::Stall => {
                let real = forward_to(upstream, req);
                if real.body.len() < 2 || req.method == "HEAD" {
                    // Nothing to cut: the same effect without a body.
                    if self == Fault::Stall {
                        Response::never()
                    } else {
                        Response::drop_connection()
                    }
                } else {
                    real.cut_short(self == Fault::Stall)
                }
            }
            Fault::Trickle => forward_to(upstream, req).trickle(16, Duration::from_millis(10)),
        }
    }
}

/// The wire protocols of the services the tasks call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson 1.0/1.1 (Secrets Manager, SSM).
    Json,
    /// restJson (Lambda).
    RestJson,
    /// awsQuery (CloudFormation, STS, IAM).
    Query,
    /// restXml (S3).
    RestXml,
}

impl Protocol {
    pub fn of(req: &Request) -> Self {
        let ct = req.header("content-type").unwrap_or("");
        if ct.starts_with("application/x-amz-json") {
            Protocol::Json
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            Protocol::Query
        } else if req.path().starts_with("/2015-03-31/") || req.path().starts_with("/2018-") {
            Protocol::RestJson
        } else {
            Protocol::RestXml
        }
    }

    pub fn throttling(self) -> Response {
        match self {
            Protocol::Json => self.error(400, "ThrottlingException", "Rate exceeded"),
            Protocol::RestJson => self.error(429, "TooManyRequestsException", "Rate exceeded"),
            Protocol::Query => self.error(400, "Throttling", "Rate exceeded"),
            Protocol::RestXml => self.error(503, "SlowDown", "Please reduce your request rate."),
        }
    }

    pub fn error(self, status: u16, code: &str, message: &str) -> Response {
        match self {
            Protocol::Json => Response::new(
                status,
                format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
            )
            .header("Content-Type", "application/x-amz-json-1.1"),
            Protocol::RestJson => {
                Response::new(status, format!(r#"{{"Type":"User","message":"{message}"}}"#))
                    .header("Content-Type", "application/json")
                    .header("x-amzn-ErrorType", code)
            }
            Protocol::Query => Response::new(
                status,
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
                ),
            )
            .header("Content-Type", "text/xml"),
            Protocol::RestXml => Response::new(
                status,
                format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
            )
            .header("Content-Type", "application/xml"),
        }
    }
}

/// Picks the first time each distinct request (method, target, body) is
/// seen: a transient fault that every request meets once, SDK retries
/// and a download resumed from where it stopped (same object, another
/// range) included, while the second of each gets through.
#[derive(Clone, Default)]
pub struct FirstOfEach {
    seen: Arc<Mutex<HashSet<u64>>>,
}

impl FirstOfEach {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pick(&self, req: &Request) -> bool {
        let mut h = std::hash::DefaultHasher::new();
        (&req.method, &req.target, &req.body).hash(&mut h);
        self.seen.lock().unwrap().insert(h.finish())
    }

    /// How many requests were picked.
    pub fn picked(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A recording proxy in front of `upstream` that answers with `fault`
/// every request `when` picks, and forwards the rest.
pub fn fault_proxy(
    upstream: &str,
    fault: Fault,
    when: impl Fn(&Request) -> bool + Send + Sync + 'static,
) -> HttpServer {
    let upstream = upstream.to_string();
    HttpServer::start(move |req| {
        if when(req) {
            fault.answer(req, &upstream)
        } else {
            forward_to(&upstream, req)
        }
    })
}
