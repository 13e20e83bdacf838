//! Turns the agent's environment into a ready [`SdkConfig`], and says where
//! the credentials and the region came from.
//!
//! One call, [`configure`], does it all:
//! 1. the region chain ([`region`]);
//! 2. the credentials chain, decided from the environment alone ([`plan`]);
//! 3. the provider that plan asks for ([`resolve`]): static keys, an assumed
//!    role, an OIDC exchange or the machine's identity, wrapped so that every
//!    secret it learns is registered with the agent before anything is printed;
//! 4. one plain log line that says where both came from, without secrets.
//!
//! It never reads an input of a particular task: only the inputs every task
//! shares (`awsCredentials`, `regionName`).

mod http;
mod http_log;
pub mod network;
mod oidc;
pub mod plan;
pub mod region;
mod resolve;

use std::sync::Arc;

use anyhow::{Context, Result};
use aws_config::{AppName, BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;
use vsts_task::Task;

pub use http_log::HttpLog;
pub use network::Network;
pub use plan::{Base, Plan, Source};
pub use region::RegionSource;
pub use resolve::machine_identity;

/// The product, as it appears in the SDK user agent.
pub const PRODUCT: &str = "aws-pipeline-tasks";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The input that names the service connection, in every task.
pub const CREDENTIALS_INPUT: &str = "awsCredentials";

/// The task with `input` (a number of seconds, 900 to 43200) standing in
/// for the pipeline variable `aws.rolecredential.maxduration`: how long
/// an assumed-role or OIDC session lasts for a tool that runs long. The
/// task as it was when the input is empty.
pub fn with_session_duration(task: Task, input: &str) -> Result<Task> {
    const VARIABLE: &str = "AWS_ROLECREDENTIAL_MAXDURATION";
    let Some(seconds) = task.inputs().int(input, 900..=43200)? else {
        return Ok(task);
    };
    let pairs: Vec<(String, String)> = task
        .env
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(VARIABLE))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([(VARIABLE.to_string(), seconds.to_string())])
        .collect();
    Ok(Task::new(
        task.name,
        vsts_task::Env::from_pairs(pairs),
        task.console,
    ))
}

/// The environment variables that hand the task's AWS access to a tool
/// ([`AwsSetup::tool_environment`]).
#[derive(Debug, Clone)]
pub struct ToolEnvironment {
    pub vars: Vec<(&'static str, String)>,
    /// When temporary credentials stop working.
    pub expiry: Option<std::time::SystemTime>,
}

impl ToolEnvironment {
    /// The names of the `AWS_*` variables set, for the log (never values).
    pub fn aws_names(&self) -> String {
        let names: Vec<&str> = self
            .vars
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| k.starts_with("AWS_"))
            .collect();
        names.join(", ")
    }

    /// Whole minutes until the credentials expire, when they do.
    pub fn minutes_left(&self) -> Option<u64> {
        self.expiry.map(|expiry| {
            expiry
                .duration_since(std::time::SystemTime::now())
                .map(|d| d.as_secs() / 60)
                .unwrap_or(0)
        })
    }
}

/// A configured SDK and the story of how it was configured.
#[derive(Debug, Clone)]
pub struct AwsSetup {
    pub config: SdkConfig,
    pub region: String,
    pub region_source: RegionSource,
    pub plan: Plan,
    /// The custom endpoint set on the service connection, if any.
    pub endpoint_url: Option<String>,
    /// The agent's proxy and TLS settings, already in `config`.
    pub network: Network,
    credentials_detail: Option<String>,
}

impl AwsSetup {
    /// The `logRequest` / `logResponse` interceptor for a client builder.
    pub fn http_log(&self, task: &Task) -> Option<aws_sdk_sts::config::SharedInterceptor> {
        let inputs = task.inputs();
        HttpLog::interceptor(
            &task.console,
            inputs.bool("logRequest"),
            inputs.bool("logResponse"),
        )
    }

    /// The credentials the task's requests sign with, to hand to a tool or
    /// to a later step. The chain registered every secret in them as it
    /// learned it.
    pub async fn credentials(&self) -> Result<aws_credential_types::Credentials> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .config
            .credentials_provider()
            .context("no credentials provider was configured")?;
        provider.provide_credentials().await.map_err(|e| {
            anyhow::anyhow!(
                "Resolving the credentials ({}) failed: {}",
                self.plan.source,
                resolve::error_text(&e)
            )
        })
    }

    /// What a tool the task starts (a script, the AWS CLI, PowerShell)
    /// needs in its environment to reach AWS as the task would: the
    /// credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` when there is one), the region (`AWS_REGION` and
    /// `AWS_DEFAULT_REGION`), the agent's proxy with its credentials
    /// (`HTTPS_PROXY`, `HTTP_PROXY` and their lowercase spellings: AWS APIs
    /// are https, and curl reads only the lowercase `http_proxy`), and
    /// `AWS_EXECUTION_ENV` naming this product and the task. Every secret
    /// in them is registered before this returns.
    pub async fn tool_environment(&self, task: &Task) -> Result<ToolEnvironment> {
        let credentials = self.credentials().await?;
        let mut vars = vec![
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_string()),
            (
                "AWS_SECRET_ACCESS_KEY",
                credentials.secret_access_key().to_string(),
            ),
        ];
        if let Some(token) = credentials.session_token() {
            vars.push(("AWS_SESSION_TOKEN", token.to_string()));
        }
        vars.push(("AWS_REGION", self.region.clone()));
        vars.push(("AWS_DEFAULT_REGION", self.region.clone()));
        if let Some(proxy) = self.network.proxy_for_tools(&task.console) {
            for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
                vars.push((name, proxy.clone()));
            }
        }
        // The original's is VSTS-<task>; ours names this product.
        vars.push(("AWS_EXECUTION_ENV", format!("{PRODUCT}-{}", task.name)));
        Ok(ToolEnvironment {
            vars,
            expiry: credentials.expiry(),
        })
    }

    /// `AWS credentials: <where>; region <r> (<where>)`. Never a secret.
    pub fn describe(&self) -> String {
        let mut what = self.plan.source.to_string();
        let mut notes = Vec::new();
        match (&self.plan.base, &self.plan.role) {
            (Base::Oidc { .. }, Some(role)) => notes.push(format!(
                "OIDC token exchanged for role {}, session '{}'",
                role.arn, role.session_name
            )),
            (_, Some(role)) => {
                let mut note =
                    format!("assumed role {}, session '{}'", role.arn, role.session_name);
                if role.external_id.is_some() {
                    note.push_str(", with external id");
                }
                if let Some(detail) = &self.credentials_detail {
                    note.push_str(&format!(", using {detail}"));
                }
                notes.push(note);
            }
            (Base::Machine, None) => {
                if let Some(detail) = &self.credentials_detail {
                    what = format!("{what}: {detail}");
                }
            }
            (Base::Keys(k), None) if k.session_token.is_some() => {
                notes.push("with session token".into())
            }
            _ => {}
        }
        if !notes.is_empty() {
            what = format!("{what} ({})", notes.join("; "));
        }
        let mut line = format!(
            "AWS credentials: {what}; region {} ({})",
            self.region, self.region_source
        );
        if let Some(url) = &self.endpoint_url {
            line.push_str(&format!("; endpoint {url} (service connection)"));
        }
        line
    }
}

fn loader(
    task: &Task,
    region: &Region,
    endpoint_url: Option<&str>,
    network: &Network,
) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .app_name(app_name(task.name))
        .http_client(network.http_client())
        // The read timeout is the network's own (idle time, see
        // `network::Timeouts`); the SDK's would bound the whole exchange.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(network.timeouts().connect)
                .build(),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

/// `aws-pipeline-tasks_<version>_<Task>`: the product, its version and the task.
fn app_name(task: &str) -> AppName {
    let version = VERSION.replace('+', "-");
    AppName::new(format!("{PRODUCT}_{version}_{task}"))
        .or_else(|_| AppName::new(PRODUCT))
        .expect("the product name is a valid app name")
}

/// The inputs every task has: the region (an editable pick list) and the
/// service connection.
pub const COMMON_INPUT_LIMITS: &[vsts_task::Limit] = &[
    vsts_task::line("regionName", 64, "a region code such as us-east-1"),
    vsts_task::line("awsCredentials", 256, "a service connection ID"),
];

/// Checks the common inputs and the task's own `limits`, before anything
/// else runs: an error names the input and its limit.
pub fn check_inputs(task: &Task, limits: &[vsts_task::Limit]) -> Result<()> {
    let inputs = task.inputs();
    inputs.check_limits(COMMON_INPUT_LIMITS)?;
    inputs.check_limits(limits)?;
    Ok(())
}

/// An endpoint URL as the SDK needs it: `http` or `https`, a host, a port
/// that exists, nothing after the path. `source` names where it came from
/// ("Input 'endpointUrl'", "The environment variable AWS_ENDPOINT_URL", ...)
/// and starts the error. Returns the value as given, trimmed.
pub fn check_endpoint_url(value: &str, source: &str) -> Result<String> {
    let value = value.trim();
    let example = "a URL such as https://s3.example.com or http://127.0.0.1:9000";
    // Errors show the value without any credentials in it.
    let shown = network::without_userinfo(value).0;
    let parsed = url::Url::parse(value).map_err(|e| {
        if e == url::ParseError::IdnaError {
            // The ASCII-only idna adapter (workspace Cargo.toml).
            return anyhow::anyhow!(
                "{source} is '{shown}': its host name is not ASCII. Give an internationalised host name in its ASCII (xn--) form."
            );
        }
        anyhow::anyhow!("{source} is '{shown}', which is not a valid URL ({e}): give {example}.")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!(
            "{source} is '{shown}': the scheme must be http or https, not '{}'. Give {example}.",
            parsed.scheme()
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("{source} is '{shown}', which has no host name: give {example}.");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        anyhow::bail!("{source} is '{shown}': an endpoint takes no query (?) or fragment (#).");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        anyhow::bail!(
            "{source} has a user name or password in it: an AWS endpoint takes none (credentials come from the service connection)."
        );
    }
    Ok(value.to_string())
}

/// Endpoint overrides must be URLs: the SDK panics on an empty one, and
/// reads a port it cannot parse as no port at all.
fn check_endpoint_settings(task: &Task, from_connection: Option<&str>) -> Result<()> {
    for (name, value) in task.env.iter() {
        let upper = name.to_ascii_uppercase();
        if upper == "AWS_ENDPOINT_URL" || upper.starts_with("AWS_ENDPOINT_URL_") {
            check_endpoint_url(value, &format!("The environment variable {name}"))?;
        }
    }
    if let Some(url) = from_connection {
        check_endpoint_url(url, "The service connection's endpointUrl")?;
    }
    Ok(())
}

/// Resolves region and credentials for `task`, registers every secret,
/// prints where they came from, and returns the SDK configuration.
pub async fn configure(task: &Task) -> Result<AwsSetup> {
    let env = &task.env;
    let console = &task.console;
    let endpoint = task.endpoint_from_input(CREDENTIALS_INPUT)?;
    let plan = plan::plan(env, endpoint.as_ref())?;
    // Secrets given to the task are registered before anything is printed.
    if let Base::Keys(keys) = &plan.base {
        console.set_secret(&keys.secret_access_key);
        if let Some(t) = &keys.session_token {
            console.set_secret(t);
        }
    }
    // Registers the proxy password before anything is printed.
    let network = Network::from_env(env, console)?;
    for w in &plan.warnings {
        console.warning(w);
    }
    if let Some(line) = network.describe() {
        console.info(&line);
    }
    let (duration, duration_warning) = plan::session_duration(env);
    if let Some(w) = duration_warning {
        console.warning(&w);
    }
    let (region_name, region_source) = region::resolve_region(env, &network).await?;
    let region = Region::new(region_name.clone());
    let endpoint_url = endpoint
        .as_ref()
        .and_then(|e| e.data("endpointUrl"))
        .map(|u| u.trim().to_string());
    check_endpoint_settings(task, endpoint_url.as_deref())?;

    let base_config = loader(task, &region, endpoint_url.as_deref(), &network)
        .no_credentials()
        .load()
        .await;
    let resolved = resolve::resolve(
        &plan,
        env,
        console,
        &base_config,
        &region,
        duration,
        &network,
    )
    .await?;
    let registering = Arc::new(resolve::Registering::new(
        resolved.provider,
        console.clone(),
    ));
    resolve::check(&registering, &plan.source.to_string()).await?;
    let config = loader(task, &region, endpoint_url.as_deref(), &network)
        .credentials_provider(SharedCredentialsProvider::new(RegisteringRef(registering)))
        .load()
        .await;
    let setup = AwsSetup {
        config,
        region: region_name,
        region_source,
        plan,
        endpoint_url,
        network,
        credentials_detail: resolved.detail,
    };
    console.info(&setup.describe());
    Ok(setup)
}

/// Shares one [`resolve::Registering`] (and its cache) with the SDK.
#[derive(Debug, Clone)]
struct RegisteringRef(Arc<resolve::Registering>);

impl aws_credential_types::provider::ProvideCredentials for RegisteringRef {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

/// A service client from the task's configuration, with the
/// `logRequest`/`logResponse` interceptor when asked:
/// `vsts_aws_common::client!(aws_sdk_ssm, &task, &setup)`.
#[macro_export]
macro_rules! client {
    ($sdk:ident, $task:expr, $setup:expr) => {{
        let mut conf =
            $sdk::config::Builder::from(&$setup.config).interceptor($crate::network::NameRequests);
        if let Some(log) = $setup.http_log($task) {
            conf = conf.interceptor(log);
        }
        $sdk::Client::from_conf(conf.build())
    }};
}

/// The text of an SDK error, for error messages: a service's answer as
/// `Code: message (HTTP status, request id)`, anything else (a timeout, a
/// refused connection, a body that could not be read) as its chain of
/// causes. Never the SDK's debug dump of the raw response.
pub fn sdk_error_text<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> String
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let SdkError::ServiceError(service) = e else {
        return resolve::error_text(e);
    };
    let (err, raw) = (service.err(), service.raw());
    let status = raw.status().as_u16();
    let mut text = match (err.code(), err.message().filter(|m| !m.is_empty())) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => message.to_string(),
        (None, None) => "the service gave no reason".to_string(),
    };
    text.push_str(&format!(" (HTTP {status}"));
    let headers = raw.headers();
    if let Some(id) = headers
        .get("x-amzn-requestid")
        .or_else(|| headers.get("x-amz-request-id"))
    {
        text.push_str(&format!(", request id {id}"));
    }
    text.push(')');
    text
}

/// The codes AWS services answer when the thing asked for does not exist.
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException", // Lambda, Secrets Manager
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",                                // S3 HEAD requests
    "NoSuchEntity",                            // IAM
    "AWS.SimpleQueueService.NonExistentQueue", // SQS (query protocol)
    "QueueDoesNotExist",                       // SQS (JSON protocol)
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ChangeSetNotFound",
    "ChangeSetNotFoundException",
];

/// Whether an SDK error says that what was asked for does not exist: a
/// service's not-found code, CloudFormation's `ValidationError` "Stack with
/// id X does not exist", or a 404 without an error body (HEAD requests).
/// Any other failure (access denied, throttling, the network) is not.
pub fn is_not_found<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let SdkError::ServiceError(service) = e else {
        return false;
    };
    let err = service.err();
    match err.code() {
        Some(code) if NOT_FOUND_CODES.contains(&code) => true,
        Some("ValidationError") => err.message().is_some_and(|m| m.contains("does not exist")),
        Some(_) => false,
        None => service.raw().status().as_u16() == 404,
    }
}

/// Attaches the SDK error's full text as the cause.
pub trait SdkResultExt<T> {
    fn sdk_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E> SdkResultExt<T>
    for std::result::Result<
        T,
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >
where
    E: std::error::Error
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + Send
        + Sync
        + 'static,
{
    fn sdk_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| anyhow::anyhow!("{}", sdk_error_text(&e)))
            .with_context(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_url_errors_never_show_credentials() {
        let e = check_endpoint_url(
            "https://AKIA1:s3cret@s3.example.com:99999",
            "Input 'endpointUrl'",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "Input 'endpointUrl' is 'https://s3.example.com:99999', which is not a valid URL (invalid port number): give a URL such as https://s3.example.com or http://127.0.0.1:9000."
        );
        let e = check_endpoint_url("https://bücher.example", "X")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not ASCII") && e.contains("xn--"), "{e}");
        check_endpoint_url("https://xn--bcher-kva.example", "X").unwrap();
        let e = check_endpoint_url("ftp://u:s3cret@host", "X")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'ftp://host'") && !e.contains("s3cret"), "{e}");
        let e = check_endpoint_url("https://u:s3cret@host", "X")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user name or password") && !e.contains("s3cret"),
            "{e}"
        );
    }

    #[test]
    fn not_found_is_one_decision_for_every_service() {
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::SdkError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let error = |status: u16, code: Option<&str>, message: &str| {
            let mut meta = ErrorMetadata::builder().message(message);
            if let Some(c) = code {
                meta = meta.code(c);
            }
            let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            SdkError::<ErrorMetadata, HttpResponse>::service_error(meta.build(), raw)
        };
        assert!(is_not_found(&error(
            404,
            Some("ResourceNotFoundException"),
            "Function not found"
        )));
        assert!(is_not_found(&error(400, Some("ParameterNotFound"), "")));
        assert!(is_not_found(&error(404, None, "")), "HEAD: a bare 404");
        assert!(is_not_found(&error(
            400,
            Some("ValidationError"),
            "Stack with id s does not exist"
        )));
        assert!(!is_not_found(&error(
            400,
            Some("ValidationError"),
            "Template format error"
        )));
        assert!(!is_not_found(&error(
            403,
            Some("AccessDeniedException"),
            "not found? no: denied"
        )));
        assert!(!is_not_found(&error(403, None, "")));
        let timeout: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::timeout_error("took too long");
        assert!(!is_not_found(&timeout));
    }

    #[test]
    fn app_name_names_product_version_and_task() {
        let name = app_name("CloudFormationCreateOrUpdateStack");
        assert_eq!(
            name.to_string(),
            format!("{PRODUCT}_{VERSION}_CloudFormationCreateOrUpdateStack")
        );
    }
}
