//! A tiny threaded HTTP/1.1 server for test doubles, plain or over TLS. One
//! request per connection (`Connection: close`), bodies by Content-Length.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A field of a form-encoded body (the STS query protocol), decoded.
    pub fn form(&self, key: &str) -> Option<String> {
        self.body_text().split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Written `n` bytes at a time with a pause after each.
    pub pace: Option<(usize, Duration)>,
    /// After what is written, the connection stays open and silent until
    /// the client gives up (instead of closing).
    pub hang: bool,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            pace: None,
            hang: false,
        }
    }
    /// Closes the connection without answering (a dropped connection).
    pub fn drop_connection() -> Self {
        Self::new(0, Vec::new())
    }

    /// Accepts the request and never answers.
    pub fn never() -> Self {
        Self {
            hang: true,
            ..Self::drop_connection()
        }
    }

    /// The body sent `chunk` bytes at a time, `every` apart.
    pub fn trickle(mut self, chunk: usize, every: Duration) -> Self {
        self.pace = Some((chunk.max(1), every));
        self
    }

    /// Announces the whole body, sends the first half, then closes the
    /// connection (`hang: false`) or goes silent (`hang: true`).
    pub fn cut_short(mut self, hang: bool) -> Self {
        let len = self.body.len();
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        self.headers
            .push(("Content-Length".into(), len.to_string()));
        self.body.truncate(len / 2);
        self.hang = hang;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A server on a free 127.0.0.1 port that records every request.
pub struct HttpServer {
    pub url: String,
    exchanges: Arc<Mutex<Vec<(Request, Response)>>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Self::start_with(None, handler)
    }

    /// An HTTPS server on `https://localhost:<port>` with `cert`.
    pub fn start_tls(
        cert: &crate::tls::ServerCert,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(Some(cert.config()), handler)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = exchanges.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => serve(stream, &*handler, &recorded),
                    Some(config) => {
                        // A client that rejects the certificate ends here.
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(conn, stream), &*handler, &recorded)
                    }
                });
            }
        });
        Self { url, exchanges }
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        self.exchanges().into_iter().map(|(req, _)| req).collect()
    }

    /// Every request with the response it got.
    pub fn exchanges(&self) -> Vec<(Request, Response)> {
        self.exchanges.lock().unwrap().clone()
    }
}

fn serve<S: Read + Write>(
    mut stream: S,
    handler: &Handler,
    recorded: &Mutex<Vec<(Request, Response)>>,
) {
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    let resp = handler(&req);
    recorded.lock().unwrap().push((req, resp.clone()));
    // Status 0: dropping the stream closes the connection without an answer.
    if resp.status != 0 {
        let _ = write_response(&mut stream, &resp);
    }
    if resp.hang {
        // Silent until the client closes (or a while passes).
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        let mut buf = [0u8; 1024];
        while std::time::Instant::now() < deadline {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(50))
                }
                Err(_) => break,
            }
        }
    }
}

fn read_request<S: Read>(stream: &mut S) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn write_response<S: Write>(stream: &mut S, resp: &Response) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // A Content-Length the handler set wins (a body cut short on purpose).
    if !resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    match resp.pace {
        None => stream.write_all(&resp.body)?,
        Some((chunk, every)) => {
            stream.flush()?;
            for part in resp.body.chunks(chunk) {
                thread::sleep(every);
                stream.write_all(part)?;
                stream.flush()?;
            }
        }
    }
    stream.flush()
}

/// A reverse proxy in front of `upstream` (moto) that records every request,
/// to see what the task sent (moto accepts and forgets, e.g., ExternalId).
pub fn recording_proxy(upstream: &str) -> HttpServer {
    faulty_proxy(upstream, |_| None)
}

/// A recording proxy that answers a request itself when `fault` says so
/// (a 500, throttling, a dropped connection), and forwards it otherwise.
pub fn faulty_proxy(
    upstream: &str,
    fault: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
) -> HttpServer {
    let upstream = upstream.to_string();
    HttpServer::start(move |req| fault(req).unwrap_or_else(|| forward_to(&upstream, req)))
}

/// Sends `req` to `upstream` (`http://host:port`) and returns its answer (a
/// 502 when it cannot be reached).
pub fn forward_to(upstream: &str, req: &Request) -> Response {
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    forward(upstream, req).unwrap_or_else(|e| Response::new(502, e.to_string()))
}

fn forward(upstream: &str, req: &Request) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(&req.body)?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end from upstream"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let mut resp = Response::new(status, raw[split + 4..].to_vec());
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim();
            if !k.eq_ignore_ascii_case("content-length")
                && !k.eq_ignore_ascii_case("connection")
                && !k.eq_ignore_ascii_case("transfer-encoding")
            {
                resp.headers.push((k.to_string(), v.trim().to_string()));
            }
        }
    }
    Ok(resp)
}
