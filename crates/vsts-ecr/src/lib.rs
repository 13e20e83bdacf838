//! What ECRPushImage and ECRPullImage share:
//!
//! - [`Registry::authorize`]: the registry's host and credentials from
//!   ECR's authorization token, both halves registered as secrets before
//!   anything is printed;
//! - [`Client`]: the container client the agent has (`docker`, or `podman`
//!   when `docker` is absent, as the original finds `docker`), run without
//!   the agent's secret-bearing variables; [`Client::login`] hands the
//!   password on standard input (never on the command line, never in the
//!   log) and [`Client::logout`] ends the session, whatever happened;
//! - image reference rules: tags, digests, and the original's Docker naming
//!   conventions.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_task::Task;
use vsts_task::tool::{self, Outcome};

/// The registry behind ECR's authorization token.
pub struct Registry {
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com`: image references
    /// start with it.
    pub host: String,
    /// What the client logs in to (the token's `proxyEndpoint`).
    pub endpoint: String,
    user: String,
    password: String,
}

impl Registry {
    /// Asks ECR for an authorization token (`ecr:GetAuthorizationToken`).
    pub async fn authorize(task: &Task, ecr: &aws_sdk_ecr::Client) -> Result<Registry> {
        task.console
            .info("Obtaining authentication token for ECR login");
        let out =
            ecr.get_authorization_token().send().await.sdk_context(|| {
                "Failed to obtain authorization token to log in to ECR".to_string()
            })?;
        let data = out
            .authorization_data
            .unwrap_or_default()
            .into_iter()
            .next()
            .context("Failed to obtain auth token! (ECR returned no authorization data)")?;
        let token = data.authorization_token.unwrap_or_default();
        // Registered before anything else is printed: the token, and the
        // password inside it.
        task.console.set_secret(&token);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .context("ECR's authorization token is not base64 of user:password")?;
        let (user, password) = decoded
            .trim()
            .split_once(':')
            .context("ECR's authorization token is not user:password")?;
        task.console.set_secret(password);
        let endpoint = data.proxy_endpoint.unwrap_or_default();
        let host = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string();
        if host.is_empty() {
            bail!(
                "ECR returned no registry endpoint with the token. Check the credentials and region."
            );
        }
        Ok(Registry {
            host,
            endpoint,
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// The ECR client for a task.
pub fn ecr(task: &Task, setup: &AwsSetup) -> aws_sdk_ecr::Client {
    vsts_aws_common::client!(aws_sdk_ecr, task, setup)
}

/// The container client on the agent.
pub struct Client {
    pub path: PathBuf,
    /// `docker` or `podman`: what the messages call it.
    pub name: String,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

impl Client {
    /// `docker`, or `podman` when `docker` is not on the agent's PATH.
    pub fn find(task: &Task) -> Result<Client> {
        for name in ["docker", "podman"] {
            if let Some(path) = tool::which(&task.env, &[name]) {
                return Ok(Client {
                    path,
                    name: name.to_string(),
                    env: tool::environment(&task.env, &[]),
                    cwd: task.temp_dir(),
                });
            }
        }
        bail!(
            "No container client: neither docker nor podman is on the agent's PATH. Install Docker (or Podman) \
             on the agent, or use a Microsoft-hosted agent, which has Docker."
        )
    }

    fn is_podman(&self) -> bool {
        self.name == "podman"
    }

    /// Runs `<client> args...`; its output is shown in the log when `show`.
    pub async fn run(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        show: bool,
    ) -> Result<tool::Output> {
        tool::run_output(
            tool::Run {
                program: &self.path,
                args,
                cwd: &self.cwd,
                env: self.env.clone(),
            },
            input,
            show,
        )
        .await
    }

    /// Runs `<client> args...` and fails, saying `what` failed and why,
    /// unless it exits with 0. Returns its standard output.
    pub async fn check(&self, what: &str, args: &[&str], input: Option<&[u8]>) -> Result<String> {
        let out = self.run(args, input, true).await?;
        match out.outcome {
            Outcome::Exited { code: 0, .. } => Ok(out.stdout),
            Outcome::Exited { code, .. } => bail!(
                "{what} failed: {} {} exited with code {code}{}",
                self.name,
                args.first().copied().unwrap_or_default(),
                reason(&out.stderr)
            ),
            Outcome::Signalled(signal) => bail!(
                "{what} failed: {} {} was ended by signal {signal}",
                self.name,
                args.first().copied().unwrap_or_default()
            ),
            Outcome::Cancelled(how) => bail!("The step was cancelled ({how}) during: {what}"),
        }
    }

    /// Whether the client has `reference` locally.
    pub async fn has_image(&self, reference: &str) -> Result<bool> {
        let out = self
            .run(
                &["image", "inspect", "--format", "{{.Id}}", reference],
                None,
                false,
            )
            .await?;
        Ok(matches!(out.outcome, Outcome::Exited { code: 0, .. }))
    }

    /// Logs in to the registry with the password on standard input.
    pub async fn login(&self, task: &Task, registry: &Registry) -> Result<()> {
        task.console.info(&format!(
            "Logging in to {} with {} (password on standard input)",
            registry.host, self.name
        ));
        let out = self
            .run(
                &[
                    "login",
                    "--username",
                    &registry.user,
                    "--password-stdin",
                    &registry.endpoint,
                ],
                Some(registry.password.as_bytes()),
                true,
            )
            .await?;
        match out.outcome {
            Outcome::Exited { code: 0, .. } => Ok(()),
            Outcome::Exited { code, .. } => {
                let why = reason(&out.stderr);
                let denied = [
                    "unauthorized",
                    "denied",
                    "401",
                    "403",
                    "invalid username/password",
                ]
                .iter()
                .any(|w| out.stderr.to_ascii_lowercase().contains(w));
                if denied {
                    bail!(
                        "The registry {} denied the login ({} login exited with code {code}){why}. Check that the \
                         credentials may call ecr:GetAuthorizationToken and pull or push in this registry.",
                        registry.host,
                        self.name
                    )
                }
                bail!(
                    "Logging in to {} failed: {} login exited with code {code}{why}",
                    registry.host,
                    self.name
                )
            }
            Outcome::Signalled(s) => bail!("{} login was ended by signal {s}", self.name),
            Outcome::Cancelled(how) => bail!("The step was cancelled ({how}) while logging in"),
        }
    }

    /// Logs out of the registry; a failure is only a warning.
    pub async fn logout(&self, task: &Task, registry: &Registry) {
        match self.run(&["logout", &registry.endpoint], None, false).await {
            Ok(out) if matches!(out.outcome, Outcome::Exited { code: 0, .. }) => task
                .console
                .info(&format!("Logged out of {}", registry.host)),
            Ok(out) => task.console.warning(&format!(
                "Logging out of {} failed{}: the client may keep its login until the token expires (12 hours).",
                registry.host,
                reason(&out.stderr)
            )),
            Err(e) => task.console.warning(&format!(
                "Logging out of {} failed: {e:#}",
                registry.host
            )),
        }
    }

    /// Pushes `reference` and returns the pushed manifest's digest when the
    /// client tells it: podman writes it to a file, docker prints it.
    pub async fn push(&self, reference: &str) -> Result<Option<String>> {
        let what = format!("Pushing {reference}");
        if self.is_podman() {
            let file = tool::TempScript::write(&self.cwd, "digest", "txt", b"")?;
            let path = file.path().to_string_lossy().into_owned();
            self.check(&what, &["push", "--digestfile", &path, reference], None)
                .await?;
            let digest = std::fs::read_to_string(file.path()).unwrap_or_default();
            return Ok(digest_in(&digest));
        }
        let out = self.check(&what, &["push", reference], None).await?;
        Ok(out
            .lines()
            .find_map(|l| l.split_once("digest: ").map(|(_, d)| d))
            .and_then(digest_in))
    }
}

/// The first `sha256:<64 hex>` in `text`.
fn digest_in(text: &str) -> Option<String> {
    let start = text.find("sha256:")?;
    let hex: String = text[start + 7..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

/// The last lines of a client's standard error, for an error message.
fn reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(": {}", lines[lines.len().saturating_sub(3)..].join(" / "))
}

/// The original's "Docker naming conventions": lower case, and only
/// letters, digits, `-`, `_` and `.` kept (a `/` goes too).
pub fn force_docker_naming(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        .collect()
}

/// An image tag as registries take it: up to 128 letters, digits, `_`,
/// `.` and `-`, not starting with `.` or `-`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `sha256:` and 64 lower-case hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An ECR repository name: lower case letters, digits and `._-/`
/// separators, 2 to 256 characters.
pub fn valid_repository(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/')
        })
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_digests() {
        assert_eq!(
            force_docker_naming("My Team/Web_App-2.0!"),
            "myteamweb_app-2.0"
        );
        assert!(valid_tag("v1.2.3") && valid_tag("latest") && valid_tag("_x"));
        assert!(
            !valid_tag("") && !valid_tag("-x") && !valid_tag("a b") && !valid_tag(&"a".repeat(129))
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        assert!(valid_digest(&d));
        assert!(!valid_digest("sha256:AB") && !valid_digest(&d[7..]));
        assert_eq!(
            digest_in(&format!("v1: digest: {d} size: 528")),
            Some(d.clone())
        );
        assert_eq!(digest_in("no digest"), None);
        assert!(
            valid_repository("team/web-app") && !valid_repository("Web") && !valid_repository("/x")
        );
        assert_eq!(reason("a\n\nb\nc\nd\n"), ": b / c / d");
    }
}
