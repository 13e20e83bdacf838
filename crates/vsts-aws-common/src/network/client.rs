//! The one HTTP client under every request of a task: hyper-util's pooled
//! HTTP/1.1 client over rustls (ring). Per connection it goes direct, to
//! the proxy in absolute form (`http://` destinations), or through the
//! proxy's CONNECT tunnel (`https://`), as the proxy matcher says; the
//! connect timeout covers all of it (TCP, tunnel and TLS handshake).
//!
//! AWS APIs speak HTTP/1.1, so there is no HTTP/2 (the SDK's own client
//! brought h2 and a second connection stack into every binary).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector as TcpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper-util's client over [`Connect`].
pub(super) type Client = hyper_util::client::legacy::Client<Connect, SdkBody>;

/// A client: `proxy` holds the proxy rules (`None`: always direct).
pub(super) fn client(
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<Arc<Matcher>>,
    connect_timeout: Duration,
) -> Client {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let connect = Connect(Arc::new(ConnectInner {
        tcp,
        tls: tokio_rustls::TlsConnector::from(tls),
        proxy,
        timeout: connect_timeout,
    }));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connect)
}

/// Opens connections: direct or through the proxy, TLS for `https`.
#[derive(Clone)]
pub(super) struct Connect(Arc<ConnectInner>);

struct ConnectInner {
    tcp: TcpConnector,
    tls: tokio_rustls::TlsConnector,
    proxy: Option<Arc<Matcher>>,
    timeout: Duration,
}

/// The connection was not open within the connect timeout.
#[derive(Debug)]
pub(super) struct ConnectTimeout(Duration);

impl std::fmt::Display for ConnectTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connect timeout after {:?}", self.0)
    }
}

impl std::error::Error for ConnectTimeout {}

impl tower_service::Service<Uri> for Connect {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let timeout = inner.timeout;
            match tokio::time::timeout(timeout, inner.open(dst)).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimeout(timeout)) as BoxError),
            }
        })
    }
}

impl ConnectInner {
    async fn open(&self, dst: Uri) -> Result<Stream, BoxError> {
        let https = dst.scheme() == Some(&http::uri::Scheme::HTTPS);
        let intercept = self.proxy.as_ref().and_then(|m| m.intercept(&dst));
        let mut tcp = self.tcp.clone();
        let io = match (&intercept, https) {
            (None, _) => tower_service::Service::call(&mut tcp, dst.clone()).await?,
            // Plain HTTP goes to the proxy, which reads the absolute URI.
            (Some(i), false) => {
                let io = tower_service::Service::call(&mut tcp, i.uri().clone()).await?;
                return Ok(Stream::Plain { io, proxied: true });
            }
            (Some(i), true) => {
                let mut tunnel = Tunnel::new(i.uri().clone(), tcp);
                if let Some(auth) = i.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                tower_service::Service::call(&mut tunnel, dst.clone()).await?
            }
        };
        if !https {
            return Ok(Stream::Plain { io, proxied: false });
        }
        let host = dst.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = self.tls.connect(name, io.into_inner()).await?;
        Ok(Stream::Tls(Box::new(TokioIo::new(tls))))
    }
}

/// A connection: plain TCP (to the server, or to the proxy that forwards
/// plain HTTP) or TLS.
pub(super) enum Stream {
    Plain {
        io: TokioIo<TcpStream>,
        proxied: bool,
    },
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            // `proxy(true)`: requests go out in absolute form.
            Stream::Plain { io, proxied } => io.connected().proxy(*proxied),
            Stream::Tls(tls) => tls.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { io, .. } => Pin::new(io).poll_read(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { io, .. } => Pin::new(io).poll_write(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { io, .. } => Pin::new(io).poll_flush(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { io, .. } => Pin::new(io).poll_shutdown(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain { io, .. } => io.is_write_vectored(),
            Stream::Tls(io) => io.is_write_vectored(),
        }
    }
}

fn find<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The SDK's view of a failed exchange, which decides whether it is
/// retried: timeouts and broken connections are transient, a request the
/// client refused is the caller's, anything else is not retried.
pub(super) fn connector_error(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let err: BoxError = Box::new(err);
    if find::<ConnectTimeout>(err.as_ref()).is_some() {
        return ConnectorError::timeout(err);
    }
    if let Some(h) = find::<hyper::Error>(err.as_ref()) {
        if h.is_timeout() {
            return ConnectorError::timeout(err);
        }
        if h.is_user() {
            return ConnectorError::user(err);
        }
        if h.is_closed() || h.is_canceled() || find::<io::Error>(h).is_some() {
            return ConnectorError::io(err);
        }
        // S3 sometimes closes a connection before the whole answer.
        if h.is_incomplete_message() {
            return ConnectorError::other(err, Some(ErrorKind::TransientError));
        }
        return ConnectorError::other(err, None);
    }
    if let Some(h) = find::<hyper_util::client::legacy::Error>(err.as_ref())
        && (h.is_connect() || find::<io::Error>(h).is_some())
    {
        return ConnectorError::io(err);
    }
    ConnectorError::other(err, None)
}
