//! What the CloudFormation tasks share.
//!
//! - [`parameters`]: parameter files and inline text (JSON or YAML; the
//!   CloudFormation list, a plain map, or CodePipeline's `Parameters`
//!   object), with the line of a bad entry;
//! - [`events`]: stack events as they happen, and the root cause of a
//!   failure (the first resources that failed, not the rollback noise);
//! - [`wait`]: polls a stack until its operation ends, streaming events,
//!   bounded by a timeout that says what state the stack was left in;
//! - [`changeset`]: waits for a change set and renders what it will do;
//! - [`outputs`]: stack outputs as variables or as one JSON variable;
//! - [`is_no_op`]: every wording CloudFormation uses for "nothing to do".

pub mod changeset;
pub mod events;
pub mod outputs;
pub mod parameters;
pub mod wait;

use aws_sdk_cloudformation::Client;
use vsts_aws_common::AwsSetup;
use vsts_task::Task;

/// The CloudFormation client, with `logRequest`/`logResponse`.
pub fn client(task: &Task, setup: &AwsSetup) -> Client {
    vsts_aws_common::client!(aws_sdk_cloudformation, task, setup)
}

/// True when a CloudFormation message means "there is nothing to change".
/// UpdateStack says "No updates are to be performed." (newer stacks:
/// "CloudFormation failed to preprocess the stack: No updates are to be
/// performed."); a change set fails with "The submitted information didn't
/// contain changes. Submit different information to create a change set."
/// or, for some sources, "...does not contain changes". Not anchored, case
/// insensitive: the incumbent's anchored patterns missed the newer wording.
pub fn is_no_op(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "no updates are to be performed",
        "didn't contain changes",
        "did not contain changes",
        "does not contain changes",
        "doesn't contain changes",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The error code and message of an SDK error, when the service sent one.
pub fn service_error<E, R>(
    e: &aws_sdk_cloudformation::error::SdkError<E, R>,
) -> Option<(String, String)>
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata,
{
    let err = e.as_service_error()?;
    Some((
        err.code().unwrap_or_default().to_string(),
        err.message().unwrap_or_default().to_string(),
    ))
}

/// The message of a service error that means "nothing to change" (some
/// calls refuse at once instead of failing later).
pub fn no_op_error<E, R>(e: &aws_sdk_cloudformation::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata,
{
    service_error(e)
        .map(|(_, message)| message)
        .filter(|m| is_no_op(m))
}

/// A ClientRequestToken: the SDK retries a call whose answer was lost, and
/// with the same token CloudFormation does not run the operation twice.
pub fn request_token(operation: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "aws-pipeline-tasks-{operation}-{}-{nanos}",
        std::process::id()
    )
}

/// `timeoutInMins`: whole minutes; 0 or less means the default of 60, as
/// in the original.
pub fn timeout_input(task: &Task) -> anyhow::Result<std::time::Duration> {
    let minutes = match task.inputs().get("timeoutInMins") {
        None => 60,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n <= 0 => 60,
            Ok(n) if n <= 10_080 => n as u64,
            _ => anyhow::bail!(
                "Input 'timeoutInMins' must be a whole number of minutes up to 10080 (got '{raw}')"
            ),
        },
    };
    Ok(std::time::Duration::from_secs(minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_no_op_wording_is_recognised() {
        for m in [
            "No updates are to be performed.",
            "CloudFormation failed to preprocess the stack: No updates are to be performed.",
            "The submitted information didn't contain changes. Submit different information to create a change set.",
            "The submitted information does not contain changes.",
            "no updates are to be performed",
        ] {
            assert!(is_no_op(m), "{m}");
        }
        for m in [
            "Template format error: Unresolved resource dependencies [X]",
            "Parameters: [Env] must have values",
            "Stack:arn is in UPDATE_IN_PROGRESS state and can not be updated.",
        ] {
            assert!(!is_no_op(m), "{m}");
        }
    }
}
