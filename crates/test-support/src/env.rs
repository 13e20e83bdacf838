//! Building the environment the agent would give a task.

use std::path::Path;

use crate::run::{RunningTask, TaskRun, run_task, spawn_task};

/// Environment pairs for one task run, built like a pipeline step.
#[derive(Default, Clone, Debug)]
pub struct TaskEnv(pub Vec<(String, String)>);

impl TaskEnv {
    pub fn new() -> Self {
        Self::default()
    }

    /// A task run against moto with the test credentials (environment
    /// variables, as a self-hosted agent would have them) and a region input.
    pub fn moto() -> Self {
        Self::new()
            .set("AWS_ENDPOINT_URL", &crate::moto())
            .set("AWS_ACCESS_KEY_ID", "testing")
            .set("AWS_SECRET_ACCESS_KEY", "testing")
            .input("regionName", crate::REGION)
    }

    pub fn set(mut self, k: &str, v: &str) -> Self {
        self.0.retain(|(key, _)| key != k);
        self.0.push((k.to_string(), v.to_string()));
        self
    }

    pub fn unset(mut self, k: &str) -> Self {
        self.0.retain(|(key, _)| key != k);
        self
    }

    /// `INPUT_<NAME>`, formatted like the agent does.
    pub fn input(self, name: &str, value: &str) -> Self {
        let key = format!("INPUT_{}", vsts_task::env_name(name));
        self.set(&key, value)
    }

    /// A public pipeline variable (listed in `VSTS_PUBLIC_VARIABLES`).
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        let mut names: Vec<String> = self
            .0
            .iter()
            .find(|(k, _)| k == "VSTS_PUBLIC_VARIABLES")
            .and_then(|(_, v)| serde_json::from_str(v).ok())
            .unwrap_or_default();
        names.push(name.to_string());
        self = self.set(
            "VSTS_PUBLIC_VARIABLES",
            &serde_json::to_string(&names).unwrap(),
        );
        self.set(&vsts_task::env_name(name), value)
    }

    /// A secret pipeline variable.
    pub fn secret_variable(self, name: &str, value: &str) -> Self {
        let key = format!("SECRET_{}", vsts_task::env_name(name));
        self.set(&key, value)
    }

    /// A service connection `conn` that exchanges the job's Azure DevOps
    /// OIDC token (from `ado`, see [`ado_oidc`]) for `role`, and the agent's
    /// own credentials removed, so nothing else can sign.
    pub fn oidc_connection(self, conn: &str, role: &str, ado: &crate::HttpServer) -> Self {
        let auth = serde_json::json!({
            "parameters": { "assumeRoleArn": role, "useOIDC": "true" },
            "scheme": "UsernamePassword"
        });
        self.unset("AWS_ACCESS_KEY_ID")
            .unset("AWS_SECRET_ACCESS_KEY")
            .input("awsCredentials", conn)
            .set(&format!("ENDPOINT_URL_{conn}"), "https://aws.amazon.com/")
            .set(&format!("ENDPOINT_AUTH_SCHEME_{conn}"), "UsernamePassword")
            .set(&format!("ENDPOINT_AUTH_{conn}"), &auth.to_string())
            .set(
                &format!("ENDPOINT_AUTH_PARAMETER_{conn}_ASSUMEROLEARN"),
                role,
            )
            .set(&format!("ENDPOINT_AUTH_PARAMETER_{conn}_USEOIDC"), "true")
            .set(
                "SYSTEM_OIDCREQUESTURI",
                &format!(
                    "{}/org/proj/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken",
                    ado.url
                ),
            )
            .set(
                "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN",
                ADO_JOB_TOKEN,
            )
    }

    pub fn run(&self, binary: &Path) -> TaskRun {
        run_task(binary, &self.0)
    }

    /// Starts the task without waiting (to cancel it, say).
    pub fn spawn(&self, binary: &Path) -> RunningTask {
        spawn_task(binary, &self.0)
    }
}

/// The job access token [`TaskEnv::oidc_connection`] gives the agent.
pub const ADO_JOB_TOKEN: &str = "oidc-job-access-token-5150";

/// Azure DevOps' OIDC token endpoint as the agent's job sees it: every
/// request gets `token`.
pub fn ado_oidc(token: &str) -> crate::HttpServer {
    let body = serde_json::json!({ "oidcToken": token }).to_string();
    crate::HttpServer::start(move |_req| {
        crate::Response::new(200, body.clone()).header("Content-Type", "application/json")
    })
}
