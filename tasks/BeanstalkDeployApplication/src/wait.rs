//! Following an environment update: the environment's events from the
//! deployment's start, printed as they come, until the environment is no
//! longer Launching or Updating; then whether it is Ready, runs the new
//! version and is not Red.

use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat};
use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EnvironmentStatus, EventSeverity};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

use crate::Params;

/// The environment, when it exists (deleted ones are left out).
pub async fn environment(
    eb: &aws_sdk_elasticbeanstalk::Client,
    p: &Params,
) -> Result<Option<EnvironmentDescription>> {
    let out = eb
        .describe_environments()
        .application_name(&p.application)
        .environment_names(&p.environment)
        .include_deleted(false)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Reading environment '{}' failed: {}",
                p.environment,
                sdk_error_text(&e)
            )
        })?;
    // Some emulators ignore the filters: look for the names.
    Ok(out
        .environments()
        .iter()
        .find(|e| {
            e.environment_name() == Some(p.environment.as_str())
                && e.application_name() == Some(p.application.as_str())
        })
        .cloned())
}

/// The date of the environment's latest event (events after it belong to
/// this deployment), or now when it has none.
pub async fn latest_event_date(
    eb: &aws_sdk_elasticbeanstalk::Client,
    p: &Params,
) -> Result<DateTime> {
    let out = eb
        .describe_events()
        .application_name(&p.application)
        .environment_name(&p.environment)
        .max_records(1)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Reading the events of '{}' failed: {}",
                p.environment,
                sdk_error_text(&e)
            )
        })?;
    Ok(out
        .events()
        .first()
        .and_then(|e| e.event_date().cloned())
        .unwrap_or_else(|| DateTime::from(std::time::SystemTime::now())))
}

fn key(d: &DateTime) -> (i64, u32) {
    (d.secs(), d.subsec_nanos())
}

fn date_text(d: &DateTime) -> String {
    d.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| d.secs().to_string())
}

/// Polls every `p.poll` until the update ends; returns the summary of a
/// success, or an error with the events that explain a failure.
pub async fn follow(
    console: &Console,
    eb: &aws_sdk_elasticbeanstalk::Client,
    p: &Params,
    since: DateTime,
) -> Result<String> {
    let start = Instant::now();
    let mut last = since;
    let mut errors: Vec<String> = Vec::new();
    let mut failed_to_deploy = false;
    console.info(&format!(
        "Waiting for environment {} (events every {} s):",
        p.environment,
        p.poll.as_secs()
    ));
    let env = loop {
        tokio::time::sleep(p.poll).await;
        let env = environment(eb, p).await?.ok_or_else(|| {
            anyhow!(
                "Environment '{}' disappeared during the deployment.",
                p.environment
            )
        })?;
        let events = eb
            .describe_events()
            .application_name(&p.application)
            .environment_name(&p.environment)
            .start_time(last)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Reading the events of '{}' failed: {}",
                    p.environment,
                    sdk_error_text(&e)
                )
            })?;
        // Newest first: print oldest first, only what is newer than seen.
        let mut new: Vec<_> = events
            .events()
            .iter()
            .filter(|e| e.event_date().is_some_and(|d| key(d) > key(&last)))
            .collect();
        new.sort_by_key(|e| e.event_date().map(key));
        for e in new {
            let severity = e.severity().map(|s| s.as_str()).unwrap_or("INFO");
            let message = e.message().unwrap_or("");
            let date = e.event_date().map(date_text).unwrap_or_default();
            console.info(&format!("{date}   {severity:<5}   {message}"));
            if matches!(
                e.severity(),
                Some(EventSeverity::Error) | Some(EventSeverity::Fatal)
            ) {
                errors.push(message.to_string());
            }
            if message == "Failed to deploy application." {
                failed_to_deploy = true;
            }
            if let Some(d) = e.event_date() {
                last = *d;
            }
        }
        if !matches!(
            env.status(),
            Some(EnvironmentStatus::Launching) | Some(EnvironmentStatus::Updating)
        ) {
            break env;
        }
    };
    let status = env.status().map(|s| s.as_str()).unwrap_or("?");
    let health = env.health().map(|h| h.as_str()).unwrap_or("?");
    let running = env.version_label().unwrap_or("");
    let mut problems = Vec::new();
    if failed_to_deploy {
        problems.push("Elastic Beanstalk reported \"Failed to deploy application.\"".to_string());
    }
    if status != "Ready" {
        problems.push(format!("the environment is {status}, not Ready"));
    }
    if running != p.label {
        problems.push(format!(
            "the environment runs version '{running}', not '{}'",
            p.label
        ));
    }
    if health == "Red" {
        problems.push("its health is Red".to_string());
    }
    if !problems.is_empty() {
        for e in &errors {
            console.error(e);
        }
        bail!(
            "Deploying version {} to environment {} failed: {}.",
            p.label,
            p.environment,
            problems.join("; ")
        );
    }
    Ok(format!(
        "Environment {} is {status} with health {health}, running version {} (in {} s).",
        p.environment,
        p.label,
        start.elapsed().as_secs()
    ))
}

/// Aborts the environment update (Beanstalk rolls the environment back);
/// returns the words to add to the task's error.
pub async fn abort(console: &Console, eb: &aws_sdk_elasticbeanstalk::Client, p: &Params) -> String {
    match eb
        .abort_environment_update()
        .environment_name(&p.environment)
        .send()
        .await
    {
        Ok(_) => format!(
            "; the update of environment {} was aborted (Elastic Beanstalk rolls it back)",
            p.environment
        ),
        Err(e) => {
            console.warning(&format!(
                "Aborting the update of environment {} failed: {}",
                p.environment,
                sdk_error_text(&e)
            ));
            format!(
                "; aborting the update of environment {} failed, it may still be updating",
                p.environment
            )
        }
    }
}
