//! ConfigureAWSCredentials: resolves credentials once (the service
//! connection, the pipeline or environment variables, or the agent's own
//! identity, then optionally a role on top) and hands them to every later
//! step of the job as variables, like `aws-actions/configure-aws-credentials`
//! does on GitHub Actions. None of the original toolkit's tasks has it.
//!
//! - `AWS.AccessKeyID`, `AWS.SecretAccessKey`, `AWS.SessionToken` (secret)
//!   and `AWS.Region`: the variables the toolkit's "Getting started" pages
//!   name, read by every task of ours and of the original.
//! - `exportEnvironmentVariables`: also `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (secret), `AWS_REGION` and
//!   `AWS_DEFAULT_REGION`, for script steps (secret variables reach a
//!   script only through its `env:` mapping, as the agent rules).
//! - Output variables `awsAccountId` and `awsCallerArn`, from
//!   sts:GetCallerIdentity with exactly the credentials handed on; an
//!   account outside `allowedAccountIds` fails before any variable is set.
//!
//! Every value learned is registered as a secret before anything is printed.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sts::types::Tag;
use vsts_aws_common::plan::DEFAULT_SESSION_NAME;
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Console, Task, VariableOptions};

/// A role to assume on top of the resolved credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRequest {
    pub arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: i32,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub role: Option<RoleRequest>,
    pub allowed_accounts: Vec<String>,
    pub export_environment: bool,
}

/// The default session length of an assumed role: one hour, which every
/// role allows (a role's maximum is 1 to 12 hours).
pub const DEFAULT_DURATION: i32 = 3600;

fn allowed_chars(value: &str, extra: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
}

impl Params {
    /// Every input error surfaces here, before the first AWS call.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let role_only = [
            "roleSessionName",
            "roleExternalId",
            "roleDurationSeconds",
            "roleSessionTags",
        ];
        let role = match inputs.get("roleToAssume") {
            None => {
                for name in role_only {
                    if inputs.get(name).is_some() {
                        task.console.warning(&format!(
                            "Input '{name}' is set but roleToAssume is empty, so it is not used."
                        ));
                    }
                }
                None
            }
            Some(arn) => {
                let arn = arn.trim().to_string();
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[2] == "iam"
                    && parts[4].len() == 12
                    && parts[4].chars().all(|c| c.is_ascii_digit())
                    && parts[5].starts_with("role/")
                    && parts[5].len() > "role/".len();
                if !ok {
                    bail!(
                        "Input 'roleToAssume' is '{arn}': give a role ARN such as arn:aws:iam::123456789012:role/deploy."
                    );
                }
                let session_name = inputs
                    .get("roleSessionName")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
                if !(2..=64).contains(&session_name.len())
                    || !allowed_chars(&session_name, "+=,.@-")
                {
                    bail!(
                        "Input 'roleSessionName' is '{session_name}': use 2 to 64 letters, digits and the characters _+=,.@-"
                    );
                }
                let external_id = inputs.get("roleExternalId").map(|s| s.trim().to_string());
                if let Some(id) = &external_id
                    && (!(2..=1224).contains(&id.len()) || !allowed_chars(id, "+=,.@:/-"))
                {
                    bail!(
                        "Input 'roleExternalId' must be 2 to 1224 letters, digits and the characters _+=,.@:/- (it has {} characters).",
                        id.len()
                    );
                }
                let duration_seconds = inputs
                    .int("roleDurationSeconds", 900..=43200)?
                    .unwrap_or(DEFAULT_DURATION as i64)
                    as i32;
                let tags = inputs.key_values("roleSessionTags")?;
                if tags.len() > 50 {
                    bail!(
                        "Input 'roleSessionTags' has {} tags: a session takes at most 50.",
                        tags.len()
                    );
                }
                for (k, v) in &tags {
                    if k.len() > 128 || v.len() > 256 {
                        bail!(
                            "Input 'roleSessionTags': the tag '{k}' is too long (keys up to 128 characters, values up to 256)."
                        );
                    }
                }
                Some(RoleRequest {
                    arn,
                    session_name,
                    external_id,
                    duration_seconds,
                    tags,
                })
            }
        };
        let allowed_accounts = inputs.list("allowedAccountIds", ',');
        for id in &allowed_accounts {
            if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                bail!(
                    "Input 'allowedAccountIds': '{id}' is not an AWS account ID (12 digits, such as 123456789012)."
                );
            }
        }
        Ok(Params {
            role,
            allowed_accounts,
            export_environment: inputs.bool("exportEnvironmentVariables"),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("roleToAssume", ceiling::ARN, "a role ARN"),
    line("roleSessionName", 64, "a role session name"),
    line("roleExternalId", 1224, "an external ID"),
    line(
        "roleDurationSeconds",
        ceiling::NUMBER,
        "a number of seconds",
    ),
    lines(
        "roleSessionTags",
        50 * (128 + 256 + 2),
        "Key=Value lines, at most 50",
    ),
    lines(
        "allowedAccountIds",
        64 * 1024,
        "comma-separated account IDs",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

/// The credentials handed on, with what to say about them.
struct Handed {
    credentials: Credentials,
    what: String,
}

pub async fn execute(task: &Task, setup: &AwsSetup, params: &Params) -> Result<()> {
    let console = &task.console;
    let handed = match &params.role {
        Some(role) => assume(task, setup, role).await?,
        None => Handed {
            credentials: setup.credentials().await?,
            what: setup.plan.source.to_string(),
        },
    };
    let credentials = &handed.credentials;
    // Registered before anything else is printed, whatever the source: the
    // key id becomes a secret variable too.
    register(console, credentials);

    let mut sts_config = aws_sdk_sts::config::Builder::from(&setup.config)
        .credentials_provider(credentials.clone())
        .interceptor(vsts_aws_common::network::NameRequests);
    if let Some(log) = setup.http_log(task) {
        sts_config = sts_config.interceptor(log);
    }
    let sts = aws_sdk_sts::Client::from_conf(sts_config.build());
    let identity = sts.get_caller_identity().send().await.map_err(|e| {
        anyhow!(
            "sts:GetCallerIdentity with the {} failed: {}",
            handed.what,
            sdk_error_text(&e)
        )
    })?;
    let account = identity.account().unwrap_or_default().to_string();
    let arn = identity.arn().unwrap_or_default().to_string();
    if !params.allowed_accounts.is_empty() && !params.allowed_accounts.contains(&account) {
        bail!(
            "The {} belong to account {account} ({arn}), which allowedAccountIds does not list ({}): no variable was set.",
            handed.what,
            params.allowed_accounts.join(", ")
        );
    }

    let secret = VariableOptions {
        secret: true,
        ..Default::default()
    };
    let plain = VariableOptions::default();
    let mut set = Vec::new();
    let mut put = |name: &str, value: &str, options: VariableOptions| {
        console.set_variable(name, value, options);
        set.push(name.to_string());
    };
    put("AWS.AccessKeyID", credentials.access_key_id(), secret);
    put(
        "AWS.SecretAccessKey",
        credentials.secret_access_key(),
        secret,
    );
    if let Some(token) = credentials.session_token() {
        put("AWS.SessionToken", token, secret);
    }
    put("AWS.Region", &setup.region, plain);
    if params.export_environment {
        put("AWS_ACCESS_KEY_ID", credentials.access_key_id(), secret);
        put(
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key(),
            secret,
        );
        if let Some(token) = credentials.session_token() {
            put("AWS_SESSION_TOKEN", token, secret);
        }
        put("AWS_REGION", &setup.region, plain);
        put("AWS_DEFAULT_REGION", &setup.region, plain);
    }
    let output = VariableOptions {
        output: true,
        ..Default::default()
    };
    console.set_variable("awsAccountId", &account, output);
    console.set_variable("awsCallerArn", &arn, output);

    console.info(&format!(
        "AWS identity {arn} (account {account}) from the {}; {}. Set for the later steps of this job: {}; output variables awsAccountId and awsCallerArn.",
        handed.what,
        lifetime(credentials.expiry(), SystemTime::now()),
        set.join(", ")
    ));
    if credentials.session_token().is_some() && !params.export_environment {
        console.info(
            "Tasks of this extension and of the AWS Toolkit read these variables by themselves; a script step \
             needs them mapped in its env: (or exportEnvironmentVariables for AWS_ACCESS_KEY_ID and friends).",
        );
    }
    Ok(())
}

fn register(console: &Console, credentials: &Credentials) {
    console.set_secret(credentials.access_key_id());
    console.set_secret(credentials.secret_access_key());
    if let Some(token) = credentials.session_token() {
        console.set_secret(token);
    }
}

async fn assume(task: &Task, setup: &AwsSetup, role: &RoleRequest) -> Result<Handed> {
    let console = &task.console;
    let sts = vsts_aws_common::client!(aws_sdk_sts, task, setup);
    let mut request = sts
        .assume_role()
        .role_arn(&role.arn)
        .role_session_name(&role.session_name)
        .duration_seconds(role.duration_seconds)
        .set_external_id(role.external_id.clone());
    for (key, value) in &role.tags {
        request = request.tags(
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| anyhow!("Input 'roleSessionTags': {e}"))?,
        );
    }
    let out = request.send().await.map_err(|e| {
        let mut message = format!(
            "Assuming role {} (session '{}') with the {} failed: {}",
            role.arn,
            role.session_name,
            setup.plan.source,
            sdk_error_text(&e)
        );
        let text = message.to_ascii_lowercase();
        if text.contains("durationseconds") || text.contains("maxsessionduration") {
            message.push_str(&format!(
                ". The role's maximum session duration may be shorter than roleDurationSeconds ({} s): raise it on the role or ask for less.",
                role.duration_seconds
            ));
        }
        anyhow!(message)
    })?;
    let c = out
        .credentials()
        .context("sts:AssumeRole answered without credentials")?;
    // Registered before anything else is printed.
    console.set_secret(c.secret_access_key());
    console.set_secret(c.session_token());
    console.set_secret(c.access_key_id());
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Handed {
        credentials: Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "ConfigureAWSCredentials",
        ),
        what: format!(
            "role {} (session '{}', assumed with the {})",
            role.arn, role.session_name, setup.plan.source
        ),
    })
}

/// "valid until 2026-12-02T17:30:00Z (59 min)", or that they do not expire.
pub fn lifetime(expiry: Option<SystemTime>, now: SystemTime) -> String {
    let Some(expiry) = expiry else {
        return "long-lived keys, which do not expire".to_string();
    };
    let at = DateTime::from_secs(DateTime::from(expiry).secs())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "an unknown time".to_string());
    match expiry.duration_since(now) {
        Ok(left) => format!("valid until {at} ({} min)", left.as_secs() / 60),
        Err(_) => format!("expired at {at}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vsts_task::Env;

    fn task(pairs: &[(&str, &str)]) -> (Task, vsts_task::Captured) {
        let (c, out) = Console::capture(false);
        let t = Task::new(
            "T",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        );
        (t, out)
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        Params::from_task(&task(pairs).0).unwrap_err().to_string()
    }

    const ROLE: (&str, &str) = (
        "INPUT_ROLETOASSUME",
        "arn:aws:iam::123456789012:role/deploy",
    );

    #[test]
    fn role_inputs_are_checked_and_defaulted() {
        let p = Params::from_task(&task(&[ROLE]).0).unwrap();
        assert_eq!(
            p.role,
            Some(RoleRequest {
                arn: "arn:aws:iam::123456789012:role/deploy".into(),
                session_name: DEFAULT_SESSION_NAME.into(),
                external_id: None,
                duration_seconds: 3600,
                tags: vec![],
            })
        );
        assert!(error(&[("INPUT_ROLETOASSUME", "deploy")]).starts_with(
            "Input 'roleToAssume' is 'deploy': give a role ARN such as arn:aws:iam::123456789012:role/deploy"
        ));
        assert!(
            error(&[("INPUT_ROLETOASSUME", "arn:aws:iam::12345:role/x")])
                .contains("give a role ARN")
        );
        assert!(
            error(&[ROLE, ("INPUT_ROLESESSIONNAME", "has space")])
                .starts_with("Input 'roleSessionName' is 'has space'")
        );
        assert!(
            error(&[ROLE, ("INPUT_ROLEDURATIONSECONDS", "600")]).contains("roleDurationSeconds")
        );
        assert!(
            error(&[ROLE, ("INPUT_ROLESESSIONTAGS", "novalue")])
                .contains("Input 'roleSessionTags', line 1: expected Key=Value")
        );
        assert!(
            error(&[ROLE, ("INPUT_ROLEEXTERNALID", "a b")]).starts_with("Input 'roleExternalId'")
        );
        assert!(
            error(&[("INPUT_ALLOWEDACCOUNTIDS", "123456789012, 42")])
                .contains("'42' is not an AWS account ID")
        );
        let p = Params::from_task(
            &task(&[
                ROLE,
                ("INPUT_ROLESESSIONTAGS", "team=data\nenv = prod"),
                ("INPUT_ROLEDURATIONSECONDS", "7200"),
                ("INPUT_ALLOWEDACCOUNTIDS", "123456789012,210987654321"),
            ])
            .0,
        )
        .unwrap();
        let role = p.role.unwrap();
        assert_eq!(role.duration_seconds, 7200);
        assert_eq!(
            role.tags,
            [
                ("team".into(), "data".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert_eq!(p.allowed_accounts, ["123456789012", "210987654321"]);
    }

    #[test]
    fn role_settings_without_a_role_warn() {
        let (t, out) = task(&[("INPUT_ROLESESSIONNAME", "x1")]);
        assert_eq!(Params::from_task(&t).unwrap().role, None);
        assert!(out.text().contains(
            "##vso[task.logissue type=warning;]Input 'roleSessionName' is set but roleToAssume is empty"
        ));
    }

    #[test]
    fn lifetimes_read_plainly() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            lifetime(Some(now + Duration::from_secs(3599)), now),
            "valid until 2023-11-14T23:13:19Z (59 min)"
        );
        assert_eq!(lifetime(None, now), "long-lived keys, which do not expire");
        assert!(lifetime(Some(now - Duration::from_secs(1)), now).starts_with("expired at"));
    }
}
