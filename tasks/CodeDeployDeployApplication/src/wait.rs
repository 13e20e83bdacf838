//! Following a deployment to its end: its status and instance counts, and
//! each target's lifecycle events as they change; on failure, what failed
//! where (the lifecycle event, script, message and log tail of each failed
//! target); on timeout, the deployment is stopped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use aws_sdk_codedeploy::types::{
    DeploymentStatus, DeploymentTarget, LifecycleEvent, TargetFilterName,
};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

/// Polls are 1 s apart at first, growing to this.
const MAX_DELAY: Duration = Duration::from_secs(15);
/// Targets whose lifecycle events are followed (one BatchGet's worth).
const FOLLOWED_TARGETS: usize = 25;

/// A target's id, status and lifecycle events, whatever its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub status: String,
    /// (event, status, diagnostics: error code, script, message, log tail)
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub status: String,
    pub error_code: Option<String>,
    pub script: Option<String>,
    pub message: Option<String>,
    pub log_tail: Option<String>,
}

fn events(list: &[LifecycleEvent]) -> Vec<Event> {
    list.iter()
        .map(|e| {
            let d = e.diagnostics();
            Event {
                name: e.lifecycle_event_name().unwrap_or("?").to_string(),
                status: e
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                error_code: d
                    .and_then(|d| d.error_code())
                    .map(|c| c.as_str().to_string()),
                script: d.and_then(|d| d.script_name()).map(str::to_string),
                message: d.and_then(|d| d.message()).map(str::to_string),
                log_tail: d.and_then(|d| d.log_tail()).map(str::to_string),
            }
        })
        .collect()
}

pub fn target(t: &DeploymentTarget) -> Option<Target> {
    macro_rules! from {
        ($x:expr) => {
            $x.map(|x| Target {
                id: x.target_id().unwrap_or("?").to_string(),
                status: x
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                events: events(x.lifecycle_events()),
            })
        };
    }
    from!(t.instance_target())
        .or_else(|| from!(t.lambda_target()))
        .or_else(|| from!(t.ecs_target()))
        .or_else(|| from!(t.cloud_formation_target()))
}

/// The deployment's targets (those with `status` when given), at most
/// `FOLLOWED_TARGETS` of them.
async fn targets(
    codedeploy: &aws_sdk_codedeploy::Client,
    id: &str,
    status: Option<&str>,
) -> Result<Vec<Target>> {
    let mut req = codedeploy.list_deployment_targets().deployment_id(id);
    if let Some(status) = status {
        req = req.target_filters(TargetFilterName::TargetStatus, vec![status.to_string()]);
    }
    let listed = req
        .send()
        .await
        .map_err(|e| anyhow!("listing the targets: {}", sdk_error_text(&e)))?;
    let ids: Vec<String> = listed
        .target_ids()
        .iter()
        .take(FOLLOWED_TARGETS)
        .cloned()
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let got = codedeploy
        .batch_get_deployment_targets()
        .deployment_id(id)
        .set_target_ids(Some(ids))
        .send()
        .await
        .map_err(|e| anyhow!("reading the targets: {}", sdk_error_text(&e)))?;
    let mut out: Vec<Target> = got.deployment_targets().iter().filter_map(target).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Follows deployment `id` until it ends or `timeout` runs out. Returns
/// the summary of a success; a failure is an error naming what failed.
pub async fn follow(
    console: &Console,
    codedeploy: &aws_sdk_codedeploy::Client,
    id: &str,
    timeout: Duration,
) -> Result<String> {
    let start = Instant::now();
    let mut delay = Duration::from_secs(1);
    let mut last = String::new();
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut follow_targets = true;
    console.info(&format!(
        "Waiting up to {} for deployment {id} to finish.",
        minutes(timeout)
    ));
    loop {
        let got = codedeploy
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Reading the state of deployment {id} failed: {}",
                    sdk_error_text(&e)
                )
            })?;
        let info = got
            .deployment_info()
            .ok_or_else(|| anyhow!("CodeDeploy returned no state for deployment {id}"))?;
        let status = info.status().cloned().unwrap_or(DeploymentStatus::Created);
        let counts = info
            .deployment_overview()
            .map(|o| {
                format!(
                    "pending {}, in progress {}, succeeded {}, failed {}, skipped {}, ready {}",
                    o.pending(),
                    o.in_progress(),
                    o.succeeded(),
                    o.failed(),
                    o.skipped(),
                    o.ready()
                )
            })
            .unwrap_or_default();
        let line = format!("Deployment {id}: {} ({counts})", status.as_str());
        if line != last {
            console.info(&line);
            last = line;
        }
        if follow_targets {
            match targets(codedeploy, id, None).await {
                Ok(list) => {
                    for t in list {
                        for e in t.events.iter().filter(|e| e.status != "Pending") {
                            let key = (t.id.clone(), e.name.clone());
                            if seen.get(&key) != Some(&e.status) {
                                console.info(&format!("  {}  {}: {}", t.id, e.name, e.status));
                                seen.insert(key, e.status.clone());
                            }
                        }
                    }
                }
                Err(e) => {
                    // The status above still follows the deployment.
                    console.debug(&format!("Not following the targets: {e:#}"));
                    follow_targets = false;
                }
            }
        }
        match status {
            DeploymentStatus::Succeeded => {
                let o = info.deployment_overview();
                let n = |f: fn(&aws_sdk_codedeploy::types::DeploymentOverview) -> i64| {
                    o.map(f).unwrap_or(0)
                };
                return Ok(format!(
                    ": {} target(s) succeeded, {} skipped, in {}",
                    n(|o| o.succeeded()),
                    n(|o| o.skipped()),
                    minutes(start.elapsed())
                ));
            }
            DeploymentStatus::Failed | DeploymentStatus::Stopped => {
                let reason = info
                    .error_information()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.code().map(|c| c.as_str()).unwrap_or("?"),
                            e.message().unwrap_or("")
                        )
                    })
                    .filter(|r| r != "?: ")
                    .unwrap_or_else(|| "CodeDeploy gave no reason".to_string());
                explain_failed_targets(console, codedeploy, id).await;
                bail!(
                    "Deployment {id} {}: {reason}",
                    if status == DeploymentStatus::Stopped {
                        "was stopped"
                    } else {
                        "failed"
                    }
                );
            }
            _ => {}
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            let stopped = stop(console, codedeploy, id).await;
            bail!(
                "Deployment {id} did not finish within {} (it was {}){stopped}. Raise 'timeoutInMins' if it needs longer.",
                minutes(timeout),
                status.as_str()
            );
        }
        tokio::time::sleep(delay.min(timeout - elapsed)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Each failed target: the first lifecycle event that failed, with its
/// error code, script and message as an error, and its log tail.
async fn explain_failed_targets(
    console: &Console,
    codedeploy: &aws_sdk_codedeploy::Client,
    id: &str,
) {
    let failed = match targets(codedeploy, id, Some("Failed")).await {
        Ok(t) => t,
        Err(e) => {
            console.debug(&format!("The failed targets could not be read: {e:#}"));
            return;
        }
    };
    for t in failed {
        let Some(e) = t.events.iter().find(|e| e.status == "Failed") else {
            console.error(&format!("{} failed ({}).", t.id, t.status));
            continue;
        };
        let mut text = format!("{} failed at {}", t.id, e.name);
        if let Some(code) = &e.error_code {
            text.push_str(&format!(": {code}"));
        }
        if let Some(script) = &e.script {
            text.push_str(&format!(" in {script}"));
        }
        if let Some(message) = &e.message {
            text.push_str(&format!(": {message}"));
        }
        console.error(&text);
        if let Some(tail) = e.log_tail.as_deref().filter(|t| !t.trim().is_empty()) {
            console.group(&format!("Log tail of {} at {}", t.id, e.name));
            console.info(tail);
            console.end_group();
        }
    }
}

/// Stops the deployment, rolling back the targets it updated; returns the
/// words to add to the task's error.
pub async fn stop(console: &Console, codedeploy: &aws_sdk_codedeploy::Client, id: &str) -> String {
    console.info(&format!(
        "Stopping deployment {id} (rolling back updated targets)."
    ));
    let result = codedeploy
        .stop_deployment()
        .deployment_id(id)
        .auto_rollback_enabled(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("{}", sdk_error_text(&e)));
    crate::stopped_text(console, id, result)
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(minutes(Duration::from_secs(3)), "3 s");
        assert_eq!(minutes(Duration::from_secs(1800)), "30 min");
        assert_eq!(minutes(Duration::from_secs(83)), "1 min 23 s");
    }
}
