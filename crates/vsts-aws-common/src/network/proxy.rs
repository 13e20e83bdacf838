//! Which way a request goes: the proxy settings as read from the agent (or
//! the standard environment variables), and the decision for each request.

use anyhow::{Result, anyhow, bail};
use hyper_util::client::proxy::matcher::Matcher;
use regex_lite::{Regex, RegexBuilder};
use vsts_task::Console;

pub(super) enum Proxy {
    None,
    /// The agent's proxy: `url` has no credentials in it.
    Agent {
        url: String,
        credentials: Option<(String, String)>,
        bypass: Vec<Regex>,
        no_proxy: Option<String>,
    },
    /// `HTTPS_PROXY` and friends; `shown` is what to print (no credentials).
    Environment {
        shown: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    Direct,
    Proxied,
}

impl Proxy {
    /// The route for `uri`: metadata hosts and bypass-list matches go
    /// direct; with a proxy from the environment, `NO_PROXY` is applied by
    /// the connector's own matcher.
    pub(super) fn route(&self, uri: &http::Uri) -> Route {
        let host = uri.host().unwrap_or_default();
        if is_metadata_host(host) {
            return Route::Direct;
        }
        match self {
            Self::None => Route::Direct,
            Self::Agent { bypass, .. } => {
                let url = uri.to_string();
                if bypass.iter().any(|re| re.is_match(&url)) {
                    Route::Direct
                } else {
                    Route::Proxied
                }
            }
            Self::Environment { .. } => Route::Proxied,
        }
    }

    /// The proxy as printed in errors: never with credentials.
    pub(super) fn shown(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Agent { url, .. } => format!("{url} (AGENT_PROXYURL)"),
            Self::Environment { shown } => format!("from the environment ({shown})"),
        }
    }

    /// The proxy rules as hyper-util's matcher: the proxy for each scheme,
    /// its credentials, and `NO_PROXY`.
    pub(super) fn matcher(&self) -> Option<Matcher> {
        match self {
            Self::None => None,
            Self::Agent { no_proxy, .. } => Some(
                Matcher::builder()
                    .all(self.agent_url_with_credentials()?)
                    .no(no_proxy.clone().unwrap_or_default())
                    .build(),
            ),
            Self::Environment { .. } => Some(Matcher::from_env()),
        }
    }

    /// The agent's proxy URL with its credentials percent-encoded in it
    /// (`None` without an agent proxy).
    pub(super) fn agent_url_with_credentials(&self) -> Option<String> {
        let Self::Agent {
            url, credentials, ..
        } = self
        else {
            return None;
        };
        Some(match credentials {
            Some((u, p)) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
                format!(
                    "{scheme}://{}:{}@{rest}",
                    encode_userinfo(u),
                    encode_userinfo(p)
                )
            }
            None => url.clone(),
        })
    }

    /// The agent proxy's password as it appears in that URL.
    pub(super) fn encoded_password(&self) -> Option<String> {
        match self {
            Self::Agent {
                credentials: Some((_, p)),
                ..
            } if !p.is_empty() => Some(encode_userinfo(p)),
            _ => None,
        }
    }
}

/// Splits `scheme://user:pass@host:port/...` into the URL without
/// credentials and the percent-decoded credentials. A value without a
/// scheme is read as `http://`, as the agent and curl do.
pub(super) fn split_credentials(raw: &str) -> (String, Option<(String, String)>) {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let Ok(mut url) = url::Url::parse(&with_scheme) else {
        // Not a URL (a bad port, say): its credentials must still never be
        // printed with it.
        return without_userinfo(raw);
    };
    if url.username().is_empty() && url.password().is_none() {
        return (raw.to_string(), None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = (decode(url.username()), decode(url.password().unwrap_or("")));
    // Cannot fail on a URL with a host, which one with credentials has.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut shown = url.to_string();
    // The parser adds a root path: keep the URL as the user wrote it.
    if url.path() == "/" && url.query().is_none() && !with_scheme.ends_with('/') {
        shown.pop();
    }
    (shown, Some(credentials))
}

/// `raw` without the `user:password@` of its authority, found by text
/// alone (for values the URL parser refuses), and the percent-decoded
/// credentials.
pub(crate) fn without_userinfo(raw: &str) -> (String, Option<(String, String)>) {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let Some(at) = raw[start..end].rfind('@').map(|i| start + i) else {
        return (raw.to_string(), None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, pass) = raw[start..at]
        .split_once(':')
        .unwrap_or((&raw[start..at], ""));
    (
        format!("{}{}", &raw[..start], &raw[at + 1..]),
        Some((decode(user), decode(pass))),
    )
}

/// The agent's proxy URL as a URL the HTTP client takes: a scheme is added
/// when missing (the agent accepts `proxy:8080`), credentials are split off,
/// and the rest must be an http or https URL with a host and a valid port.
pub(super) fn agent_proxy_url(raw: &str) -> Result<(String, Option<(String, String)>)> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let (url, credentials) = split_credentials(&with_scheme);
    let parsed = url::Url::parse(&url).map_err(|e| {
        anyhow!("The agent's proxy URL (AGENT_PROXYURL) '{url}' is not a URL ({e}).")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!(
            "The agent's proxy URL (AGENT_PROXYURL) '{url}' is not supported: it must be an http:// or https:// URL."
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        bail!("The agent's proxy URL (AGENT_PROXYURL) '{url}' is not a URL (no host).");
    }
    Ok((
        parsed.as_str().trim_end_matches('/').to_string(),
        credentials,
    ))
}

pub(super) fn bypass_list(raw: &str, console: &Console) -> Vec<Regex> {
    let entries: Vec<String> = match serde_json::from_str(raw) {
        Ok(entries) => entries,
        Err(e) => {
            console.warning(&format!(
                "The agent's proxy bypass list (AGENT_PROXYBYPASSLIST) is not a JSON list of strings ({e}); \
                 it is ignored, so every request goes through the proxy."
            ));
            return Vec::new();
        }
    };
    entries
        .iter()
        .filter(|e| !e.trim().is_empty())
        .filter_map(|entry| {
            match RegexBuilder::new(entry.trim()).case_insensitive(true).build() {
                Ok(re) => Some(re),
                Err(e) => {
                    console.warning(&format!(
                        "The agent's proxy bypass entry '{entry}' is not a regular expression this task understands ({e}); \
                         it is ignored."
                    ));
                    None
                }
            }
        })
        .collect()
}

/// Instance metadata (169.254.169.254, fd00:ec2::254), ECS and EKS
/// container credentials (169.254.170.2, 169.254.170.23, fd00:ec2::23):
/// link-local addresses no proxy can reach.
pub(super) fn is_metadata_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with("169.254.")
        || host.eq_ignore_ascii_case("fd00:ec2::254")
        || host.eq_ignore_ascii_case("fd00:ec2::23")
}

pub(super) fn encode_userinfo(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_the_proxy_url() {
        assert_eq!(
            split_credentials("http://bob:p%40ss@proxy:3128/"),
            (
                "http://proxy:3128/".to_string(),
                Some(("bob".to_string(), "p@ss".to_string()))
            )
        );
        assert_eq!(
            split_credentials("http://proxy:3128"),
            ("http://proxy:3128".to_string(), None)
        );
        // Without a scheme (HTTPS_PROXY=user:pass@proxy:3128 is common):
        // the credentials are still found, so they can be registered.
        assert_eq!(
            split_credentials("ops:s3cr%3At@proxy:3128"),
            (
                "http://proxy:3128".to_string(),
                Some(("ops".to_string(), "s3cr:t".to_string()))
            )
        );
    }

    #[test]
    fn agent_proxy_url_gets_a_scheme_and_is_checked() {
        assert_eq!(
            agent_proxy_url("proxy.corp:8080").unwrap().0,
            "http://proxy.corp:8080"
        );
        assert_eq!(
            agent_proxy_url(" https://proxy.corp/ ").unwrap().0,
            "https://proxy.corp"
        );
        let e = agent_proxy_url("socks5://proxy:1080")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AGENT_PROXYURL") && e.contains("http://"), "{e}");
        let e = agent_proxy_url("http://").unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
        let e = agent_proxy_url("proxy.corp:99999").unwrap_err().to_string();
        assert!(e.contains("not a URL (invalid port number)"), "{e}");
        // A URL the parser refuses still loses its credentials.
        let e = agent_proxy_url("http://ops:pr%40xy-pass@proxy.corp:99999/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'http://proxy.corp:99999/'"), "{e}");
        assert!(!e.contains("xy-pass"), "{e}");
        assert_eq!(
            split_credentials("ops:pr%40xy-pass@proxy.corp:99999"),
            (
                "proxy.corp:99999".to_string(),
                Some(("ops".to_string(), "pr@xy-pass".to_string()))
            )
        );
        assert_eq!(
            agent_proxy_url("HTTP://Proxy.Corp:8080/").unwrap().0,
            "http://proxy.corp:8080"
        );
    }

    #[test]
    fn bypass_entries_match_like_task_lib() {
        let (console, _out) = Console::capture(false);
        let list = bypass_list(
            r#"["\\.internal\\.corp$", "S3\\.EU-WEST-1", "(["]"#,
            &console,
        );
        assert_eq!(list.len(), 2, "the bad entry is dropped");
        let matches = |url: &str| list.iter().any(|re| re.is_match(url));
        assert!(matches("https://s3.eu-west-1.amazonaws.com/bucket"));
        assert!(matches("http://git.internal.corp"));
        assert!(!matches("https://sts.amazonaws.com/"));
    }

    #[test]
    fn metadata_addresses_are_never_proxied() {
        for host in [
            "169.254.169.254",
            "169.254.170.2",
            "[fd00:ec2::254]",
            "fd00:ec2::23",
        ] {
            assert!(is_metadata_host(host), "{host}");
        }
        assert!(!is_metadata_host("127.0.0.1"));
        assert!(!is_metadata_host("sts.amazonaws.com"));
    }
}
