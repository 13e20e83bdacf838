//! Waiting until Lambda has applied a change.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_lambda::types::{LastUpdateStatus, State};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

/// How long one change may take before the task gives up.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Polls until the function is Active and its last update is not in
/// progress. A failed update fails with Lambda's reason. Without permission
/// to read the state: a warning and a short wait, as in the original.
pub async fn wait(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let conf = match lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
        {
            Ok(c) => c,
            Err(e) => {
                use aws_sdk_lambda::error::ProvideErrorMetadata;
                if e.code() == Some("AccessDeniedException") {
                    console.warning(&format!(
                        "Cannot read the state of {function} (lambda:GetFunctionConfiguration is not allowed): waiting 5 s instead."
                    ));
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    return Ok(());
                }
                bail!(
                    "Reading the state of '{function}' failed: {}",
                    sdk_error_text(&e)
                );
            }
        };
        let state = conf.state().cloned();
        let update = conf.last_update_status().cloned();
        if state == Some(State::Failed) || update == Some(LastUpdateStatus::Failed) {
            let reason = conf
                .last_update_status_reason()
                .or(conf.state_reason())
                .unwrap_or("no reason given");
            bail!("Lambda reports the update of '{function}' failed: {reason}");
        }
        // Spelled as Lambda spells them (Debug output is shallow in release).
        let shown_state = state.as_ref().map_or("-", |s| s.as_str());
        let shown_update = update.as_ref().map_or("-", |u| u.as_str());
        let active = matches!(state, None | Some(State::Active));
        let settled = !matches!(update, Some(LastUpdateStatus::InProgress));
        if active && settled {
            console.debug(&format!(
                "{function}: state {shown_state}, last update {shown_update}"
            ));
            return Ok(());
        }
        if start.elapsed() > WAIT_LIMIT {
            bail!(
                "'{function}' is still {shown_state} / {shown_update} after {} s.",
                WAIT_LIMIT.as_secs()
            );
        }
        console.info(&format!(
            "Waiting for {function}: state {shown_state}, last update {shown_update}"
        ));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
