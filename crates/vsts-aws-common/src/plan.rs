//! Which credentials a task will use, decided from the environment alone (no
//! network): the precedence chain as data.
//!
//! Each source answers one of three ways: not configured here (`Ok(None)`,
//! try the next), configured (`Ok(Some(plan))`), or configured but broken
//! (`Err`, stop: a half-configured source never falls through silently).

use std::fmt;

use anyhow::{Result, bail};
use vsts_task::{Endpoint, Env, Variables};

/// The default role session name, as in the AWS Toolkit for Azure DevOps, so
/// that trust policies written for it keep working.
pub const DEFAULT_SESSION_NAME: &str = "aws-vsts-tools";

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    ServiceConnection {
        id: String,
    },
    PipelineVariables,
    EnvironmentVariables,
    /// The agent machine's own identity (web identity file, ECS, IMDS).
    AgentMachine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::ServiceConnection { id } => write!(f, "service connection {id}"),
            Source::PipelineVariables => {
                f.write_str("pipeline variables AWS.AccessKeyID/AWS.SecretAccessKey")
            }
            Source::EnvironmentVariables => {
                f.write_str("environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
            }
            Source::AgentMachine => f.write_str("the agent machine's own identity"),
        }
    }
}

/// Long-lived or temporary keys given directly.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keys({}, secret: ***, session token: {})",
            self.access_key_id,
            self.session_token.is_some()
        )
    }
}

/// What signs the first call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Keys(Keys),
    /// The credentials of the agent machine: the standard environment
    /// variables, else its own identity.
    Ambient,
    /// An Azure DevOps OIDC token for the service connection, exchanged with
    /// `sts:AssumeRoleWithWebIdentity`.
    Oidc {
        connection_id: String,
    },
    /// The agent machine's identity, and nothing else.
    Machine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// The decision: a source, what signs, and an optional role to assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    pub base: Base,
    pub role: Option<Role>,
    /// Things worth a warning that do not stop the task.
    pub warnings: Vec<String>,
}

type SourceFn = fn(&Env, Option<&Endpoint>) -> Result<Option<Plan>>;

/// The chain, first match wins. The agent machine's identity comes last and
/// always answers, so it is not in the list.
pub const CHAIN: [(&str, SourceFn); 3] = [
    ("service connection", service_connection),
    ("pipeline variables", pipeline_variables),
    ("environment variables", environment_variables),
];

/// Decides which credentials to use.
pub fn plan(env: &Env, endpoint: Option<&Endpoint>) -> Result<Plan> {
    for (_, source) in CHAIN {
        if let Some(plan) = source(env, endpoint)? {
            return Ok(plan);
        }
    }
    Ok(Plan {
        source: Source::AgentMachine,
        base: Base::Machine,
        role: None,
        warnings: Vec::new(),
    })
}

/// The pipeline variable `aws.rolecredential.maxduration`: 900 to 43200
/// seconds; anything else warns and uses 900.
pub fn session_duration(env: &Env) -> (u32, Option<String>) {
    const DEFAULT: u32 = 900;
    let Some(raw) = Variables::new(env).value("aws.rolecredential.maxduration") else {
        return (DEFAULT, None);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (900..=43200).contains(&n) => (n, None),
        _ => (
            DEFAULT,
            Some(format!(
                "The variable aws.rolecredential.maxduration must be a number of seconds from 900 to 43200 (got '{}'); using 900.",
                raw.trim()
            )),
        ),
    }
}

fn service_connection(_env: &Env, endpoint: Option<&Endpoint>) -> Result<Option<Plan>> {
    let Some(ep) = endpoint else {
        return Ok(None);
    };
    let name = format!("Service connection {}", ep.id);
    let key = ep.auth_param("username");
    let secret = ep.auth_param("password");
    let token = ep.auth_param("sessionToken");
    let role_arn = ep.auth_param("assumeRoleArn");
    let use_oidc = ep
        .auth_param("useOIDC")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let keys = match (key, secret) {
        (Some(k), Some(s)) => Some(Keys {
            access_key_id: k.trim().to_string(),
            secret_access_key: s.trim().to_string(),
            session_token: token.map(|t| t.trim().to_string()),
        }),
        (Some(_), None) => bail!(
            "{name}: the Access Key ID is set but the Secret Access Key is empty. Set both, or clear both to use a role without keys."
        ),
        (None, Some(_)) => bail!(
            "{name}: the Secret Access Key is set but the Access Key ID is empty. Set both, or clear both to use a role without keys."
        ),
        (None, None) if token.is_some() => bail!(
            "{name}: a Session Token is set without an Access Key ID and Secret Access Key. Set all three, or clear the Session Token."
        ),
        (None, None) => None,
    };
    let mut warnings = Vec::new();
    let role = role_arn.map(|arn| Role {
        arn: arn.trim().to_string(),
        external_id: ep.auth_param("externalId").map(|s| s.trim().to_string()),
        session_name: ep
            .auth_param("roleSessionName")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
    });
    if role.is_none() {
        for (field, label) in [
            ("externalId", "External ID"),
            ("roleSessionName", "Role Session Name"),
        ] {
            if ep.auth_param(field).is_some() {
                warnings.push(format!(
                    "{name}: '{label}' is set but there is no Role to Assume, so it is not used."
                ));
            }
        }
    }
    let base = match (keys, use_oidc, &role) {
        (Some(_), true, _) => bail!(
            "{name}: 'Use OIDC' is checked and keys are set as well. OIDC needs no keys: clear the Access Key ID and Secret Access Key, or uncheck 'Use OIDC'."
        ),
        (None, true, None) => bail!(
            "{name}: 'Use OIDC' is checked but 'Role to Assume' is empty. OIDC exchanges the pipeline's token for that role's credentials: set the role ARN."
        ),
        (None, true, Some(_)) => Base::Oidc {
            connection_id: ep.id.clone(),
        },
        (Some(keys), false, _) => Base::Keys(keys),
        (None, false, Some(_)) => Base::Ambient,
        (None, false, None) => bail!(
            "{name} has neither keys nor a role to assume. Set an Access Key ID and Secret Access Key, or a Role to Assume (with 'Use OIDC', or with the agent machine's own credentials)."
        ),
    };
    Ok(Some(Plan {
        source: Source::ServiceConnection { id: ep.id.clone() },
        base,
        role,
        warnings,
    }))
}

fn pipeline_variables(env: &Env, _endpoint: Option<&Endpoint>) -> Result<Option<Plan>> {
    let vars = Variables::new(env);
    let key = vars.value("AWS.AccessKeyID");
    let secret = vars.value("AWS.SecretAccessKey");
    let token = vars.value("AWS.SessionToken");
    let role_arn = vars.value("AWS.AssumeRoleArn");
    if key.is_none() && secret.is_none() && token.is_none() && role_arn.is_none() {
        return Ok(None);
    }
    let keys = match (key, secret) {
        (Some(k), Some(s)) => Some(Keys {
            access_key_id: k.trim().to_string(),
            secret_access_key: s.trim().to_string(),
            session_token: token.map(|t| t.trim().to_string()),
        }),
        (Some(_), None) => bail!(
            "The pipeline variable AWS.AccessKeyID is set but AWS.SecretAccessKey is not. Set both (the secret as a secret variable), or neither."
        ),
        (None, Some(_)) => bail!(
            "The pipeline variable AWS.SecretAccessKey is set but AWS.AccessKeyID is not. Set both, or neither."
        ),
        (None, None) if token.is_some() => bail!(
            "The pipeline variable AWS.SessionToken is set without AWS.AccessKeyID and AWS.SecretAccessKey. Set all three, or remove AWS.SessionToken."
        ),
        (None, None) => None,
    };
    let role = role_arn.map(|arn| Role {
        arn: arn.trim().to_string(),
        external_id: vars.value("AWS.ExternalId").map(|s| s.trim().to_string()),
        session_name: vars
            .value("AWS.RoleSessionName")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
    });
    let base = match keys {
        Some(keys) => Base::Keys(keys),
        None => Base::Ambient,
    };
    Ok(Some(Plan {
        source: Source::PipelineVariables,
        base,
        role,
        warnings: Vec::new(),
    }))
}

fn environment_variables(env: &Env, _endpoint: Option<&Endpoint>) -> Result<Option<Plan>> {
    match env_keys(env)? {
        None => Ok(None),
        Some(keys) => {
            let role = env.get("AWS_ROLE_ARN").map(|arn| Role {
                arn: arn.trim().to_string(),
                external_id: None,
                session_name: env
                    .get("AWS_ROLE_SESSION_NAME")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
            });
            Ok(Some(Plan {
                source: Source::EnvironmentVariables,
                base: Base::Keys(keys),
                role,
                warnings: Vec::new(),
            }))
        }
    }
}

/// The standard environment variables' keys, if set; an error if half set.
pub fn env_keys(env: &Env) -> Result<Option<Keys>> {
    let key = env.get("AWS_ACCESS_KEY_ID");
    let secret = env.get("AWS_SECRET_ACCESS_KEY");
    let token = env.get("AWS_SESSION_TOKEN");
    match (key, secret) {
        (Some(k), Some(s)) => Ok(Some(Keys {
            access_key_id: k.trim().to_string(),
            secret_access_key: s.trim().to_string(),
            session_token: token.map(|t| t.trim().to_string()),
        })),
        (Some(_), None) => bail!(
            "The environment variable AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not. Set both, or neither."
        ),
        (None, Some(_)) => bail!(
            "The environment variable AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not. Set both, or neither."
        ),
        (None, None) if token.is_some() => bail!(
            "The environment variable AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Set all three, or unset AWS_SESSION_TOKEN."
        ),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0e0e0e0e-1111-4222-8333-444444444444";

    type Pairs<'a> = Vec<(&'a str, &'a str)>;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn connection(params: &[(&str, &str)]) -> Env {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| {
                (
                    format!("ENDPOINT_AUTH_PARAMETER_{ID}_{}", k.to_uppercase()),
                    v.to_string(),
                )
            })
            .collect();
        pairs.push((
            format!("ENDPOINT_AUTH_SCHEME_{ID}"),
            "UsernamePassword".into(),
        ));
        Env::from_pairs(pairs)
    }

    fn plan_of(env: &Env) -> Result<Plan> {
        let ep = Endpoint::from_env(env, ID);
        plan(env, ep.as_ref())
    }

    fn keys(k: &str, s: &str, t: Option<&str>) -> Base {
        Base::Keys(Keys {
            access_key_id: k.into(),
            secret_access_key: s.into(),
            session_token: t.map(str::to_string),
        })
    }

    /// (environment, expected source, expected base, expected role arn)
    #[test]
    fn precedence_table() {
        let conn_keys = &[("username", "AKC"), ("password", "SC")][..];
        let vars = &[
            ("AWS_ACCESSKEYID", "AKV"),
            ("SECRET_AWS_SECRETACCESSKEY", "SV"),
        ][..];
        let envs = &[
            ("AWS_ACCESS_KEY_ID", "AKE"),
            ("AWS_SECRET_ACCESS_KEY", "SE"),
        ][..];
        let cases: Vec<(Pairs, bool, Source, Base)> = vec![
            (
                vec![],
                true,
                Source::ServiceConnection { id: ID.into() },
                keys("AKC", "SC", None),
            ),
            (
                vars.to_vec(),
                true,
                Source::ServiceConnection { id: ID.into() },
                keys("AKC", "SC", None),
            ),
            (
                envs.to_vec(),
                true,
                Source::ServiceConnection { id: ID.into() },
                keys("AKC", "SC", None),
            ),
            (
                vars.to_vec(),
                false,
                Source::PipelineVariables,
                keys("AKV", "SV", None),
            ),
            (
                [vars, envs].concat(),
                false,
                Source::PipelineVariables,
                keys("AKV", "SV", None),
            ),
            (
                envs.to_vec(),
                false,
                Source::EnvironmentVariables,
                keys("AKE", "SE", None),
            ),
            (vec![], false, Source::AgentMachine, Base::Machine),
        ];
        for (pairs, with_conn, source, base) in cases {
            let mut e = if with_conn {
                connection(conn_keys)
            } else {
                Env::default()
            };
            for (k, v) in &pairs {
                e.set(*k, *v);
            }
            let p = plan_of(&e).unwrap();
            assert_eq!(
                (p.source, p.base),
                (source, base),
                "{pairs:?} conn={with_conn}"
            );
        }
    }

    #[test]
    fn connection_role_variants() {
        let p = plan_of(&connection(&[
            ("username", "AK"),
            ("password", "S"),
            ("sessionToken", "T"),
            ("assumeRoleArn", "arn:aws:iam::1:role/r"),
            ("externalId", "x"),
            ("roleSessionName", "sess"),
        ]))
        .unwrap();
        assert_eq!(p.base, keys("AK", "S", Some("T")));
        assert_eq!(
            p.role,
            Some(Role {
                arn: "arn:aws:iam::1:role/r".into(),
                external_id: Some("x".into()),
                session_name: "sess".into()
            })
        );

        let p = plan_of(&connection(&[("assumeRoleArn", "arn:r")])).unwrap();
        assert_eq!(p.base, Base::Ambient);
        assert_eq!(p.role.unwrap().session_name, DEFAULT_SESSION_NAME);

        let p = plan_of(&connection(&[
            ("assumeRoleArn", "arn:r"),
            ("useOIDC", "true"),
        ]))
        .unwrap();
        assert_eq!(
            p.base,
            Base::Oidc {
                connection_id: ID.into()
            }
        );
    }

    #[test]
    fn half_configured_sources_are_errors_that_say_what_is_missing() {
        let cases: Vec<(Env, &str)> = vec![
            (
                connection(&[("username", "AK")]),
                "Secret Access Key is empty",
            ),
            (connection(&[("password", "S")]), "Access Key ID is empty"),
            (
                connection(&[("sessionToken", "T")]),
                "Session Token is set without",
            ),
            (
                connection(&[("useOIDC", "true")]),
                "'Role to Assume' is empty",
            ),
            (
                connection(&[
                    ("username", "AK"),
                    ("password", "S"),
                    ("useOIDC", "true"),
                    ("assumeRoleArn", "a"),
                ]),
                "clear the Access Key ID",
            ),
            (
                connection(&[("externalId", "x")]),
                "has neither keys nor a role",
            ),
            (
                env(&[("AWS_ACCESSKEYID", "AK")]),
                "AWS.SecretAccessKey is not",
            ),
            (
                env(&[("SECRET_AWS_SECRETACCESSKEY", "S")]),
                "AWS.AccessKeyID is not",
            ),
            (
                env(&[("SECRET_AWS_SESSIONTOKEN", "T")]),
                "AWS.SessionToken is set without",
            ),
            (
                env(&[("AWS_ACCESS_KEY_ID", "AK")]),
                "AWS_SECRET_ACCESS_KEY is not",
            ),
            (
                env(&[("AWS_SECRET_ACCESS_KEY", "S")]),
                "AWS_ACCESS_KEY_ID is not",
            ),
            (
                env(&[("AWS_SESSION_TOKEN", "T")]),
                "AWS_SESSION_TOKEN is set without",
            ),
        ];
        for (e, want) in cases {
            let err = plan_of(&e).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(
                !err.contains("\"S\"") && !err.contains("'S'"),
                "no secret in {err}"
            );
        }
    }

    #[test]
    fn a_broken_higher_source_never_falls_through() {
        let mut e = env(&[
            ("AWS_ACCESSKEYID", "AK"),
            ("AWS_ACCESS_KEY_ID", "AKE"),
            ("AWS_SECRET_ACCESS_KEY", "SE"),
        ]);
        assert!(plan_of(&e).is_err());
        e.set("SECRET_AWS_SECRETACCESSKEY", "S");
        assert_eq!(plan_of(&e).unwrap().source, Source::PipelineVariables);
    }

    #[test]
    fn variables_role_and_env_role() {
        let p = plan_of(&env(&[
            ("AWS_ASSUMEROLEARN", "arn:v"),
            ("AWS_EXTERNALID", "ext"),
            ("AWS_ROLESESSIONNAME", "s"),
        ]))
        .unwrap();
        assert_eq!(p.base, Base::Ambient);
        assert_eq!(p.role.unwrap().external_id.as_deref(), Some("ext"));

        let p = plan_of(&env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_ROLE_ARN", "arn:e"),
        ]))
        .unwrap();
        assert_eq!(p.role.unwrap().arn, "arn:e");
        // AWS_ROLE_ARN without keys belongs to the machine's web identity.
        assert_eq!(
            plan_of(&env(&[("AWS_ROLE_ARN", "arn:e")])).unwrap().base,
            Base::Machine
        );
    }

    #[test]
    fn session_duration_is_bounded() {
        let d = |v: &str| session_duration(&env(&[("AWS_ROLECREDENTIAL_MAXDURATION", v)]));
        assert_eq!(d("3600"), (3600, None));
        assert_eq!(d("43200").0, 43200);
        for bad in ["899", "43201", "1h", "-5"] {
            let (n, warning) = d(bad);
            assert_eq!(n, 900);
            assert!(warning.unwrap().contains(bad));
        }
        assert_eq!(session_duration(&Env::default()), (900, None));
    }
}
