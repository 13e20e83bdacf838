//! What the S3 tasks share: the client, file patterns, SSE-C keys, progress,
//! and uploading a file (`transfer`: PutObject or parallel multipart).

mod patterns;
mod progress;
pub mod transfer;

use anyhow::{Result, bail};
use base64::Engine;
use md5::{Digest, Md5};
use vsts_aws_common::AwsSetup;
use vsts_task::Task;

pub use patterns::Patterns;
pub use progress::Progress;

/// The S3 client of every task that talks to S3 (CloudFormation's template
/// upload too): path-style addressing when asked or when any custom
/// endpoint is in use (emulators and S3-compatible stores rarely resolve
/// `bucket.host`), an endpoint from the task input over the service
/// connection's, five attempts, the HTTP log.
pub fn client(
    task: &Task,
    setup: &AwsSetup,
    path_style: bool,
    endpoint: Option<&str>,
) -> aws_sdk_s3::Client {
    let custom = endpoint.is_some()
        || setup.endpoint_url.is_some()
        || task.env.get("AWS_ENDPOINT_URL").is_some()
        || task.env.get("AWS_ENDPOINT_URL_S3").is_some();
    let mut conf = aws_sdk_s3::config::Builder::from(&setup.config)
        .force_path_style(path_style || custom)
        .interceptor(vsts_aws_common::network::NameRequests);
    // Transfers meet throttling and dropped connections more than other
    // calls: five attempts, unless the agent says otherwise.
    if task.env.get("AWS_MAX_ATTEMPTS").is_none() {
        conf = conf
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(5));
    }
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    if let Some(log) = setup.http_log(task) {
        conf = conf.interceptor(log);
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}

/// The task input `endpointUrl`, checked.
pub fn endpoint_input(task: &Task) -> Result<Option<String>> {
    let Some(url) = task.inputs().get("endpointUrl") else {
        return Ok(None);
    };
    vsts_aws_common::check_endpoint_url(&url, "Input 'endpointUrl'").map(Some)
}

/// A customer-provided key (SSE-C), given as 64 hex digits like the
/// original task takes it.
#[derive(Clone)]
pub struct CustomerKey {
    pub key_b64: String,
    pub md5_b64: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(***)")
    }
}

impl CustomerKey {
    /// Parses the hex key; registers it (and its base64 form) as a secret.
    pub fn from_input(task: &Task, input: &str) -> Result<CustomerKey> {
        let raw = task.inputs().get(input).unwrap_or_default();
        if raw.is_empty() {
            bail!("Input required: {input} (keyManagement is 'customerManaged')");
        }
        task.console.set_secret(&raw);
        let bytes = (raw.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&raw[2 * i..2 * i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten();
        let Some(bytes) = bytes else {
            bail!("Input '{input}' must be a 256-bit key written as 64 hexadecimal digits.");
        };
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        task.console.set_secret(&key_b64);
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes));
        Ok(CustomerKey { key_b64, md5_b64 })
    }
}

/// Joins an S3 prefix and a relative key like the original (Node's
/// `path.join`): one `/` between segments, `.` and `..` resolved, a leading
/// `/` of the prefix kept.
pub fn join_key(prefix: &str, rel: &str) -> String {
    let leading = prefix.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in prefix.split('/').chain(rel.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if leading {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `1.2 MiB`-style sizes for the log.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_like_node_path_join() {
        assert_eq!(join_key("", "a/b.txt"), "a/b.txt");
        assert_eq!(join_key("site/v1", "css/a.css"), "site/v1/css/a.css");
        assert_eq!(join_key("site/v1/", "./a.css"), "site/v1/a.css");
        assert_eq!(join_key("/rooted", "a"), "/rooted/a");
        assert_eq!(join_key("a//b/../c", "d"), "a/c/d");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512.0 MiB");
    }
}
