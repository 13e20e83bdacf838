//! Workload identity federation: an Azure DevOps OIDC token for the service
//! connection, exchanged for role credentials with
//! `sts:AssumeRoleWithWebIdentity`. Refreshes fetch a new token each time.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use vsts_task::{Console, Env, Variables};

use crate::plan::Role;

/// Attempts at the token endpoint; the waits between them double.
const TOKEN_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct OidcProvider {
    request_uri: String,
    connection_id: String,
    access_token: String,
    role: Role,
    duration_seconds: u32,
    sts: aws_sdk_sts::Client,
    http: crate::http::Plain,
    console: Console,
}

impl OidcProvider {
    /// Checks that the agent gave what OIDC needs; registers the job token
    /// as a secret.
    pub fn new(
        env: &Env,
        console: &Console,
        connection_id: &str,
        role: Role,
        duration_seconds: u32,
        sts: aws_sdk_sts::Client,
        network: &crate::network::Network,
    ) -> Result<Self> {
        let request_uri = env.get("SYSTEM_OIDCREQUESTURI").map(str::to_string).ok_or_else(|| {
            anyhow!(
                "Service connection {connection_id} uses OIDC, but the agent did not pass System.OidcRequestUri. \
                 OIDC needs an Azure DevOps organization with workload identity federation and an agent that supports it."
            )
        })?;
        let access_token = env
            .get("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN")
            .map(str::to_string)
            .or_else(|| Variables::new(env).value("System.AccessToken"))
            .ok_or_else(|| {
                anyhow!(
                    "Service connection {connection_id} uses OIDC, but the job's access token is not available \
                     (System.AccessToken). Allow scripts to access the OAuth token for this job."
                )
            })?;
        console.set_secret(&access_token);
        let http = crate::http::Plain::new(network);
        Ok(Self {
            request_uri,
            connection_id: connection_id.to_string(),
            access_token,
            role,
            duration_seconds,
            sts,
            http,
            console: console.clone(),
        })
    }

    fn token_url(&self) -> String {
        let sep = if self.request_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}api-version=7.1&serviceConnectionId={}",
            self.request_uri, self.connection_id
        )
    }

    /// POSTs to the token endpoint, retrying server errors and dropped
    /// connections with backoff. Client errors are final.
    pub async fn fetch_token(&self) -> Result<String> {
        let url = self.token_url();
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=TOKEN_ATTEMPTS {
            let sent = self.http.post_json(&url, &self.access_token, "{}").await;
            match sent {
                Ok((status, body)) if (200..300).contains(&status) => {
                    let json: serde_json::Value = serde_json::from_str(&body)
                        .context("the OIDC token response is not JSON")?;
                    let token = json
                        .get("oidcToken")
                        .and_then(|t| t.as_str())
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| anyhow!("the OIDC token response has no oidcToken"))?
                        .to_string();
                    self.console.set_secret(&token);
                    return Ok(token);
                }
                Ok((status, _)) => {
                    last = format!("HTTP {status}");
                    if !(status >= 500 || status == 429) {
                        bail!(
                            "Azure DevOps refused the OIDC token request for service connection {} ({last}). \
                             Check that this pipeline may use the connection.",
                            self.connection_id
                        );
                    }
                }
                Err(e) => last = format!("{e:#}"),
            }
            if attempt < TOKEN_ATTEMPTS {
                self.console.info(&format!(
                    "OIDC token request failed ({last}); retrying in {} ms (attempt {attempt} of {TOKEN_ATTEMPTS})",
                    backoff.as_millis()
                ));
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        bail!(
            "Could not get an OIDC token from Azure DevOps for service connection {} after {TOKEN_ATTEMPTS} attempts: {last}",
            self.connection_id
        )
    }

    async fn credentials(&self) -> Result<Credentials> {
        let token = self.fetch_token().await?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role.arn)
            .role_session_name(&self.role.session_name)
            .web_identity_token(&token)
            .duration_seconds(self.duration_seconds as i32)
            .send()
            .await
            .map_err(|e| {
                let mut text = crate::sdk_error_text(&e);
                // STS refused the token: what it saw is what the role's
                // trust policy must match (a renamed service connection or
                // project, a new issuer).
                if let (Some(_), Some(claims)) = (e.as_service_error(), token_claims(&token)) {
                    text.push_str(&format!(
                        ". The token presented: {claims}; the role's trust policy must allow exactly these"
                    ));
                }
                anyhow!("{text}")
            })
            .with_context(|| {
                format!(
                    "sts:AssumeRoleWithWebIdentity for role {} failed",
                    self.role.arn
                )
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| anyhow!("sts:AssumeRoleWithWebIdentity returned no credentials"))?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            SystemTime::try_from(*c.expiration()).ok(),
            "AzureDevOpsOidc",
        ))
    }
}

/// The `iss`, `aud` and `sub` claims of a JWT, for error messages (claims,
/// not the token: nothing secret). `None` when it is not a readable JWT.
fn token_claims(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let claim = |name: &str| match &claims[name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => "(none)".to_string(),
    };
    Some(format!(
        "iss {}, aud {}, sub {}",
        claim("iss"),
        claim("aud"),
        claim("sub")
    ))
}

impl ProvideCredentials for OidcProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials()
                .await
                .map_err(|e| CredentialsError::provider_error(format!("{e:#}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_of_a_token_for_error_messages() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(
                r#"{"iss":"https://vstoken.dev.azure.com/0b1f","aud":["api://AzureADTokenExchange"],"sub":"sc://org/proj/aws-prod","jti":"x"}"#
            )
        );
        assert_eq!(
            token_claims(&token).as_deref(),
            Some(
                "iss https://vstoken.dev.azure.com/0b1f, aud api://AzureADTokenExchange, sub sc://org/proj/aws-prod"
            )
        );
        assert_eq!(token_claims("not a jwt"), None);
        assert_eq!(token_claims("a.!!!.c"), None);
    }
}
