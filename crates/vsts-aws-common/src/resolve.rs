//! Turns a [`Plan`] into a working credentials provider.

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use aws_config::SdkConfig;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_types::region::Region;
use tokio::sync::Mutex;
use vsts_task::{Console, Env};

use crate::network::Network;
use crate::oidc::OidcProvider;
use crate::plan::{Base, Keys, Plan, env_keys};

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Wraps a provider: keeps the last credentials until they near expiry and
/// registers every secret it receives with the agent before handing it on.
pub struct Registering {
    inner: SharedCredentialsProvider,
    console: Console,
    cache: Mutex<Option<Credentials>>,
}

impl fmt::Debug for Registering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Registering")
    }
}

impl Registering {
    pub fn new(inner: SharedCredentialsProvider, console: Console) -> Self {
        Self {
            inner,
            console,
            cache: Mutex::new(None),
        }
    }

    async fn get(&self) -> provider::Result {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| exp > SystemTime::now() + REFRESH_MARGIN);
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self.inner.provide_credentials().await?;
        register(&self.console, &c);
        *cache = Some(c.clone());
        Ok(c)
    }
}

/// Registers the secret parts of credentials. Temporary credentials (with an
/// expiry) have their access key id registered too: it is an STS result.
pub fn register(console: &Console, c: &Credentials) {
    console.set_secret(c.secret_access_key());
    if let Some(t) = c.session_token() {
        console.set_secret(t);
    }
    if c.expiry().is_some() {
        console.set_secret(c.access_key_id());
    }
}

impl ProvideCredentials for Registering {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.get())
    }
}

fn static_provider(keys: &Keys, name: &'static str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        name,
    ))
}

/// What the resolver found, for the log line.
pub struct Resolved {
    pub provider: SharedCredentialsProvider,
    /// E.g. `EC2 instance metadata (IMDSv2)` for the machine identity, or the
    /// ambient source a role was assumed with.
    pub detail: Option<String>,
}

/// The agent machine's own identity: web identity token file, ECS container
/// credentials, EC2 instance metadata, in that order.
pub async fn machine_identity(
    region: &Region,
    network: &Network,
) -> Result<(SharedCredentialsProvider, String)> {
    let pc = ProviderConfig::without_region()
        .with_region(Some(region.clone()))
        .with_http_client(network.http_client());
    let chain: [(&str, SharedCredentialsProvider); 3] = [
        (
            "web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE)",
            SharedCredentialsProvider::new(
                WebIdentityTokenCredentialsProvider::builder()
                    .configure(&pc)
                    .build(),
            ),
        ),
        (
            "ECS container credentials",
            SharedCredentialsProvider::new(
                EcsCredentialsProvider::builder().configure(&pc).build(),
            ),
        ),
        (
            "EC2 instance metadata (IMDSv2)",
            SharedCredentialsProvider::new(
                ImdsCredentialsProvider::builder().configure(&pc).build(),
            ),
        ),
    ];
    for (name, p) in chain {
        match p.provide_credentials().await {
            Ok(_) => return Ok((p, name.to_string())),
            Err(CredentialsError::CredentialsNotLoaded(_)) => continue,
            Err(e) => {
                return Err(anyhow!(
                    "The agent machine's {name} are configured but failed: {}",
                    error_text(&e)
                ));
            }
        }
    }
    Err(anyhow!(
        "No AWS credentials found. Give the task a service connection (input 'awsCredentials'), \
         or set the pipeline variables AWS.AccessKeyID and AWS.SecretAccessKey, \
         or the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY on the agent, \
         or run the agent where it has an identity of its own (EC2 instance profile, ECS task role, web identity token file)."
    ))
}

/// Builds the provider a plan asks for. `base_config` carries the region,
/// endpoint and HTTP settings that STS calls use.
pub async fn resolve(
    plan: &Plan,
    env: &Env,
    console: &Console,
    base_config: &SdkConfig,
    region: &Region,
    duration_seconds: u32,
    network: &Network,
) -> Result<Resolved> {
    let (base, detail) = match &plan.base {
        Base::Keys(keys) => (static_provider(keys, "TaskKeys"), None),
        Base::Machine => {
            let (p, name) = machine_identity(region, network).await?;
            (p, Some(name))
        }
        Base::Ambient => match env_keys(env)? {
            Some(keys) => (
                static_provider(&keys, "Environment"),
                Some("environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".to_string()),
            ),
            None => {
                let (p, name) = machine_identity(region, network).await?;
                (p, Some(format!("the agent machine's {name}")))
            }
        },
        Base::Oidc { connection_id } => {
            let role = plan
                .role
                .clone()
                .ok_or_else(|| anyhow!("OIDC needs a role to assume"))?;
            let sts = aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(base_config)
                    .interceptor(crate::network::NameRequests)
                    .build(),
            );
            let p = OidcProvider::new(
                env,
                console,
                connection_id,
                role,
                duration_seconds,
                sts,
                network,
            )?;
            return Ok(Resolved {
                provider: SharedCredentialsProvider::new(p),
                detail: None,
            });
        }
    };
    let provider = match &plan.role {
        None => base,
        Some(role) => {
            let mut b = AssumeRoleProvider::builder(&role.arn)
                .session_name(&role.session_name)
                .session_length(Duration::from_secs(duration_seconds.into()))
                .region(region.clone())
                .configure(base_config);
            if let Some(ext) = &role.external_id {
                b = b.external_id(ext);
            }
            SharedCredentialsProvider::new(b.build_from_provider(base).await)
        }
    };
    Ok(Resolved { provider, detail })
}

/// The full text of a credentials error, its causes included.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Fetches credentials once, so a broken source fails the task at its start
/// with a message that names the source.
pub async fn check(provider: &Registering, what: &str) -> Result<()> {
    provider
        .provide_credentials()
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("{}", error_text(&e)))
        .with_context(|| format!("Could not get AWS credentials from {what}"))
}
