//! The credential and region chain run end to end: the `aws-whoami` binary
//! (which configures the SDK exactly as every task does, then calls
//! sts:GetCallerIdentity) against moto, with the environment the agent would
//! give it. A recording proxy in front of moto shows what was really sent.

mod chain;
mod machine;
mod network;
mod oidc;
mod region;

use std::path::Path;

use test_support::{HttpServer, Request, TaskRun, recording_proxy, run_task};

/// Environment pairs in a test table.
pub type Pairs<'a> = Vec<(&'a str, &'a str)>;

pub const CONN: &str = "5a1c0ffe-0000-4000-8000-000000000001";

pub fn whoami() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-whoami"))
}

/// An environment builder: strings in, pairs out.
#[derive(Default, Clone)]
pub struct E(pub Vec<(String, String)>);

impl E {
    pub fn new() -> Self {
        E::default()
    }
    pub fn set(mut self, k: &str, v: &str) -> Self {
        self.0.push((k.to_string(), v.to_string()));
        self
    }
    /// A service connection with these auth parameters, chosen by the task.
    pub fn connection(mut self, params: &[(&str, &str)]) -> Self {
        self = self.set("INPUT_AWSCREDENTIALS", CONN);
        self = self.set(&format!("ENDPOINT_URL_{CONN}"), "https://aws.amazon.com/");
        self = self.set(&format!("ENDPOINT_AUTH_SCHEME_{CONN}"), "UsernamePassword");
        let json: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        self = self.set(
            &format!("ENDPOINT_AUTH_{CONN}"),
            &serde_json::json!({ "parameters": json, "scheme": "UsernamePassword" }).to_string(),
        );
        for (k, v) in params {
            self = self.set(
                &format!("ENDPOINT_AUTH_PARAMETER_{CONN}_{}", k.to_uppercase()),
                v,
            );
        }
        self
    }
    pub fn region(self, r: &str) -> Self {
        self.set("INPUT_REGIONNAME", r)
    }
    pub fn endpoint(self, url: &str) -> Self {
        self.set("AWS_ENDPOINT_URL", url)
    }
    pub fn run(&self) -> TaskRun {
        run_task(whoami(), &self.0)
    }
}

/// A recording proxy in front of moto.
pub fn proxy() -> HttpServer {
    recording_proxy(&test_support::moto())
}

/// The STS `Action` of a form-encoded request.
pub fn action(req: &Request) -> String {
    form(req, "Action").unwrap_or_default()
}

/// A field of a form-encoded (STS query protocol) request body.
pub fn form(req: &Request, key: &str) -> Option<String> {
    req.form(key)
}

/// The access key id and region of a SigV4 `Authorization` header.
pub fn signer(req: &Request) -> Option<(String, String)> {
    let auth = req.header("authorization")?;
    let cred = auth.split("Credential=").nth(1)?.split(',').next()?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    Some((key, region))
}

/// The last request with this STS action.
pub fn last_call(server: &HttpServer, act: &str) -> Request {
    server
        .requests()
        .into_iter()
        .rev()
        .find(|r| action(r) == act)
        .unwrap_or_else(|| panic!("no {act} request reached the proxy"))
}

/// A tag's text in an XML body (STS responses).
pub fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].to_string())
}

/// The caller ARN that aws-whoami printed.
pub fn caller(run: &TaskRun) -> String {
    run.plain()
        .iter()
        .find_map(|l| l.strip_prefix("Caller identity: "))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no caller identity in output:\n{}", run.stdout))
}

/// The `AWS credentials: ...` line.
pub fn described(run: &TaskRun) -> String {
    run.plain()
        .iter()
        .find(|l| l.starts_with("AWS credentials: "))
        .map(|l| l.to_string())
        .unwrap_or_else(|| panic!("no credentials line in output:\n{}", run.stdout))
}
