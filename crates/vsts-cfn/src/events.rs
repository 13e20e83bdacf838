//! Stack events: new ones as they happen, printed in order, and the root
//! cause of a failed operation.

use std::collections::HashSet;

use anyhow::Result;
use aws_sdk_cloudformation::Client;
use aws_smithy_types::date_time::Format;
use serde_json::Value;
use vsts_aws_common::SdkResultExt;

/// One stack event, as DescribeStackEvents (or `aws cloudformation
/// describe-stack-events`) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub timestamp: String,
    pub logical_id: String,
    pub physical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

impl Event {
    pub fn from_sdk(e: &aws_sdk_cloudformation::types::StackEvent) -> Self {
        Event {
            id: e.event_id().unwrap_or_default().to_string(),
            timestamp: e
                .timestamp()
                .and_then(|t| t.fmt(Format::DateTime).ok())
                .unwrap_or_default(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
            physical_id: e.physical_resource_id().unwrap_or_default().to_string(),
            resource_type: e.resource_type().unwrap_or_default().to_string(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: e.resource_status_reason().unwrap_or_default().to_string(),
        }
    }

    /// From the JSON of `aws cloudformation describe-stack-events` (one
    /// element of `StackEvents`).
    pub fn from_json(v: &Value) -> Self {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Event {
            id: s("EventId"),
            timestamp: s("Timestamp"),
            logical_id: s("LogicalResourceId"),
            physical_id: s("PhysicalResourceId"),
            resource_type: s("ResourceType"),
            status: s("ResourceStatus"),
            reason: s("ResourceStatusReason"),
        }
    }

    /// The event of the stack itself (not of one of its resources).
    pub fn is_stack(&self) -> bool {
        self.resource_type == "AWS::CloudFormation::Stack"
            && self.physical_id.contains(":stack/")
            && self.logical_id_is_stack()
    }

    fn logical_id_is_stack(&self) -> bool {
        // The stack's own events carry its name as the logical id and its
        // ARN as the physical id; a nested stack resource has its own
        // logical id and the nested stack's ARN.
        self.physical_id
            .split(":stack/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|name| name == self.logical_id)
    }

    /// A nested stack resource of this stack (its physical id is the
    /// nested stack's ARN).
    pub fn is_nested_stack(&self) -> bool {
        self.resource_type == "AWS::CloudFormation::Stack"
            && self.physical_id.contains(":stack/")
            && !self.is_stack()
    }

    pub fn failed(&self) -> bool {
        self.status.ends_with("_FAILED")
    }

    /// One log line: time (to the second), status, type, logical id, reason.
    pub fn line(&self) -> String {
        let time = match self.timestamp.split_once('.') {
            Some((seconds, _)) => format!("{seconds}Z"),
            None => self.timestamp.clone(),
        };
        let mut line = format!(
            "{time:<20}  {:<28}  {:<36}  {}",
            self.status, self.resource_type, self.logical_id
        );
        if !self.reason.is_empty() {
            line.push_str("  ");
            line.push_str(&self.reason);
        }
        line
    }
}

/// Reasons that only say a resource was stopped because another failed.
fn is_cancellation(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("resource creation cancelled")
        || r.contains("resource update cancelled")
        || r.contains("resource deletion cancelled")
        || r.contains("resource handler returned message: \"null\"")
}

/// The failures that explain a failed operation, first cause first: the
/// resources that failed with a reason of their own, in the order they
/// failed, without the cancellations that follow a first failure and
/// without the stack's own summary ("The following resource(s) failed to
/// create: ..."). When nothing else explains it (a template or permission
/// error on the stack itself), the stack's own failure reason.
/// `events` is in chronological order.
pub fn root_causes(events: &[Event]) -> Vec<&Event> {
    let resource_failures: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.failed() && !e.is_stack() && !e.reason.is_empty() && !is_cancellation(&e.reason)
        })
        .collect();
    if !resource_failures.is_empty() {
        return resource_failures;
    }
    let stack_failures: Vec<&Event> = events
        .iter()
        .filter(|e| (e.failed() || e.status.contains("ROLLBACK")) && !e.reason.is_empty())
        .filter(|e| !is_cancellation(&e.reason))
        .collect();
    stack_failures.into_iter().take(1).collect()
}

/// The root causes as text for an error message (at most `limit`).
pub fn describe_causes(causes: &[&Event], limit: usize) -> String {
    let mut out = String::new();
    for (i, e) in causes.iter().take(limit).enumerate() {
        let label = if i == 0 { "Root cause" } else { "Also failed" };
        out.push_str(&format!(
            "\n  {label}: {} ({}) {}: {}",
            e.logical_id, e.resource_type, e.status, e.reason
        ));
    }
    if causes.len() > limit {
        out.push_str(&format!(
            "\n  ... and {} more failures",
            causes.len() - limit
        ));
    }
    out
}

/// Every event of `stack` from `since` on (an RFC 3339 time; empty for
/// all), oldest first. At most 20 pages.
pub async fn events_since(client: &Client, stack: &str, since: &str) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let page = client
            .describe_stack_events()
            .stack_name(stack)
            .set_next_token(token.clone())
            .send()
            .await
            .sdk_context(|| format!("reading the events of stack {stack}"))?;
        let mut older = false;
        for e in page.stack_events() {
            let e = Event::from_sdk(e);
            if !since.is_empty() && e.timestamp.as_str() < since {
                older = true;
                break;
            }
            out.push(e);
        }
        token = page.next_token().map(str::to_string);
        if older || token.is_none() {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// Root causes that look inside failed nested stacks: a nested stack's
/// "Embedded stack ... was not successfully created" is replaced by what
/// failed in it, named `<NestedLogicalId>/<LogicalId>` (three levels at
/// most). When a nested stack's events cannot be read, its own reason stays.
pub async fn root_causes_deep(client: &Client, events: &[Event], since: &str) -> Vec<Event> {
    expand(
        client,
        root_causes(events).into_iter().cloned().collect(),
        since,
        3,
    )
    .await
}

fn expand<'a>(
    client: &'a Client,
    causes: Vec<Event>,
    since: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Event>> + Send + 'a>> {
    Box::pin(async move {
        let mut out = Vec::new();
        for cause in causes {
            if depth > 0
                && cause.is_nested_stack()
                && let Ok(nested) = events_since(client, &cause.physical_id, since).await
            {
                let inner: Vec<Event> = root_causes(&nested)
                    .into_iter()
                    .filter(|e| !e.is_stack())
                    .cloned()
                    .collect();
                if !inner.is_empty() {
                    for mut e in expand(client, inner, since, depth - 1).await {
                        e.logical_id = format!("{}/{}", cause.logical_id, e.logical_id);
                        out.push(e);
                    }
                    continue;
                }
            }
            out.push(cause);
        }
        out
    })
}

/// Follows a stack's events: remembers what it has seen, returns only new
/// events, oldest first.
pub struct EventStream {
    stack: String,
    seen: HashSet<String>,
    /// Events older than this (RFC 3339) are history: not returned, and
    /// paging stops at them. Empty: no limit.
    since: String,
    /// Every event since the stream started, oldest first.
    pub events: Vec<Event>,
    /// False once DescribeStackEvents failed (for example, not allowed):
    /// waiting goes on without events.
    pub available: bool,
}

impl EventStream {
    /// Starts after the events the stack already has (none when it does not
    /// exist yet).
    pub async fn start(client: &Client, stack: &str) -> Self {
        let mut stream = EventStream::fresh(stack);
        // Only the newest page: enough to recognise where new events begin.
        if let Ok(page) = client
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
        {
            for e in page.stack_events() {
                stream
                    .seen
                    .insert(e.event_id().unwrap_or_default().to_string());
            }
        }
        stream
    }

    /// Starts with no history (a stack created by this task).
    pub fn fresh(stack: &str) -> Self {
        EventStream {
            stack: stack.to_string(),
            seen: HashSet::new(),
            since: String::new(),
            events: Vec::new(),
            available: true,
        }
    }

    /// Events from `since` (RFC 3339) on: a nested stack whose history
    /// before this operation does not matter.
    pub fn since(stack: &str, since: &str) -> Self {
        EventStream {
            since: since.to_string(),
            ..EventStream::fresh(stack)
        }
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Events newer than the ones already seen, oldest first. Stops paging
    /// at the first page that holds an event already seen.
    pub async fn poll(&mut self, client: &Client) -> Result<Vec<Event>> {
        let mut new = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .describe_stack_events()
                .stack_name(&self.stack)
                .set_next_token(token.clone())
                .send()
                .await
                .sdk_context(|| format!("reading the events of stack {}", self.stack))?;
            let mut reached_seen = false;
            for e in page.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if self.seen.contains(id) {
                    reached_seen = true;
                    break;
                }
                let e = Event::from_sdk(e);
                if !self.since.is_empty() && e.timestamp < self.since {
                    reached_seen = true;
                    break;
                }
                new.push(e);
            }
            token = page.next_token().map(str::to_string);
            if reached_seen || token.is_none() {
                break;
            }
        }
        new.reverse();
        for e in &new {
            self.seen.insert(e.id.clone());
        }
        self.events.extend(new.iter().cloned());
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> Vec<Event> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        // As recorded: newest first, like the API.
        let mut events: Vec<Event> = v["StackEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(Event::from_json)
            .collect();
        events.reverse();
        events
    }

    #[test]
    fn create_rollback_points_at_the_first_failed_resource() {
        let events = recorded("create-rollback-events.json");
        let causes = root_causes(&events);
        assert_eq!(causes[0].logical_id, "AppRole");
        assert!(
            causes[0]
                .reason
                .contains("is not authorized to perform: iam:CreateRole")
        );
        // The queue was cancelled, not broken: it is not a cause.
        assert!(causes.iter().all(|e| e.logical_id != "WorkQueue"));
        // The stack's own "The following resource(s) failed" summary is noise.
        assert!(causes.iter().all(|e| !e.is_stack()));
        assert_eq!(causes.len(), 2, "{causes:#?}");
        assert_eq!(causes[1].logical_id, "AssetsBucket");
        let text = describe_causes(&causes, 5);
        assert!(text.starts_with(
            "\n  Root cause: AppRole (AWS::IAM::Role) CREATE_FAILED: User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized"
        ), "{text}");
    }

    #[test]
    fn update_rollback_ignores_cancelled_nested_stacks_and_rollback_progress() {
        let events = recorded("update-rollback-events.json");
        let causes = root_causes(&events);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        assert_eq!(causes[0].logical_id, "ApiFunction");
        assert!(causes[0].reason.contains("Runtime nodejs12.x"));
    }

    #[test]
    fn a_template_error_on_the_stack_itself_is_the_cause() {
        let events = recorded("stack-level-failure-events.json");
        let causes = root_causes(&events);
        assert_eq!(causes.len(), 1);
        assert!(causes[0].is_stack());
        assert!(causes[0].reason.contains("Parameter validation failed"));
    }

    #[test]
    fn nested_stack_resources_are_not_the_stack() {
        let nested = Event {
            id: "1".into(),
            timestamp: String::new(),
            logical_id: "Network".into(),
            physical_id:
                "arn:aws:cloudformation:eu-west-1:123456789012:stack/app-Network-1ABC/guid".into(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: "CREATE_FAILED".into(),
            reason: "Embedded stack failed".into(),
        };
        assert!(!nested.is_stack());
        let own = Event {
            logical_id: "app".into(),
            physical_id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/guid".into(),
            ..nested
        };
        assert!(own.is_stack());
    }
}
