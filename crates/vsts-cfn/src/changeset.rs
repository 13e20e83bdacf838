//! Change sets: waiting for one to be ready, and what it will do, for the
//! log and for the run summary.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_cloudformation::Client;
use vsts_aws_common::SdkResultExt;

/// One resource change of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False`, `Conditional` or empty (Add/Remove).
    pub replacement: String,
}

/// A change set once CloudFormation has finished creating it.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub id: String,
    pub name: String,
    pub stack_id: String,
    pub stack_name: String,
    pub status: String,
    pub status_reason: String,
    pub execution_status: String,
    pub changes: Vec<Change>,
}

impl ChangeSet {
    pub fn is_no_op(&self) -> bool {
        self.status == "FAILED" && crate::is_no_op(&self.status_reason)
    }
}

/// Describes a change set (every page of its changes). `None` when it does
/// not exist.
pub async fn describe(
    client: &Client,
    name: &str,
    stack: Option<&str>,
) -> Result<Option<ChangeSet>> {
    let mut token: Option<String> = None;
    let mut set: Option<ChangeSet> = None;
    loop {
        let out = match client
            .describe_change_set()
            .change_set_name(name)
            .set_stack_name(stack.map(str::to_string))
            .set_next_token(token.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                if vsts_aws_common::is_not_found(&e) {
                    return Ok(None);
                }
                return Err(e).sdk_context(|| format!("describing change set {name}"));
            }
        };
        let s = set.get_or_insert_with(|| ChangeSet {
            id: out.change_set_id().unwrap_or_default().to_string(),
            name: out.change_set_name().unwrap_or(name).to_string(),
            stack_id: out.stack_id().unwrap_or_default().to_string(),
            stack_name: out.stack_name().unwrap_or_default().to_string(),
            status: out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            status_reason: out.status_reason().unwrap_or_default().to_string(),
            execution_status: out
                .execution_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            changes: Vec::new(),
        });
        for c in out.changes() {
            if let Some(rc) = c.resource_change() {
                s.changes.push(Change {
                    action: rc
                        .action()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: rc.resource_type().unwrap_or_default().to_string(),
                    replacement: rc
                        .replacement()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(set)
}

/// Waits until the change set is no longer being created.
pub async fn wait_until_ready(
    client: &Client,
    name: &str,
    stack: Option<&str>,
    timeout: Duration,
) -> Result<ChangeSet> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::ZERO;
    loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).clamp(Duration::from_secs(1), Duration::from_secs(5));
        let Some(set) = describe(client, name, stack).await? else {
            bail!("Change set {name} disappeared while CloudFormation was creating it.");
        };
        if set.status != "CREATE_PENDING" && set.status != "CREATE_IN_PROGRESS" {
            return Ok(set);
        }
        if Instant::now() >= deadline {
            bail!(
                "Timed out after {} s waiting for change set {name}: it is still {}.",
                timeout.as_secs(),
                set.status
            );
        }
    }
}

/// The plan, one line per change, for the log.
pub fn preview_lines(set: &ChangeSet) -> Vec<String> {
    let mut lines = vec![format!(
        "Change set {} for stack {}: {} change(s)",
        set.name,
        set.stack_name,
        set.changes.len()
    )];
    let width = set
        .changes
        .iter()
        .map(|c| c.logical_id.len())
        .max()
        .unwrap_or(0);
    let type_width = set
        .changes
        .iter()
        .map(|c| c.resource_type.len())
        .max()
        .unwrap_or(0);
    for c in &set.changes {
        let mut line = format!(
            "  {:<8} {:<width$}  {:<type_width$}",
            c.action, c.logical_id, c.resource_type
        );
        if !c.replacement.is_empty() && c.action == "Modify" {
            line.push_str(&format!("  replacement: {}", c.replacement));
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The plan as a Markdown table, for the run summary.
pub fn preview_markdown(set: &ChangeSet) -> String {
    let mut md = format!(
        "#### Change set `{}` ({} change(s))\n\n",
        set.name,
        set.changes.len()
    );
    if set.changes.is_empty() {
        md.push_str("No resource changes.\n");
        return md;
    }
    md.push_str("| Action | Logical ID | Type | Replacement |\n|---|---|---|---|\n");
    for c in &set.changes {
        let replacement = if c.action == "Modify" {
            c.replacement.as_str()
        } else {
            ""
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&c.action),
            cell(&c.logical_id),
            cell(&c.resource_type),
            cell(replacement)
        ));
    }
    md
}

/// A Markdown table cell: pipes escaped, no line breaks.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ChangeSet {
        ChangeSet {
            id: "arn:cs".into(),
            name: "release-42".into(),
            stack_id: "arn:stack".into(),
            stack_name: "web".into(),
            status: "CREATE_COMPLETE".into(),
            status_reason: String::new(),
            execution_status: "AVAILABLE".into(),
            changes: vec![
                Change {
                    action: "Add".into(),
                    logical_id: "Queue".into(),
                    resource_type: "AWS::SQS::Queue".into(),
                    replacement: String::new(),
                },
                Change {
                    action: "Modify".into(),
                    logical_id: "Database".into(),
                    resource_type: "AWS::RDS::DBInstance".into(),
                    replacement: "True".into(),
                },
            ],
        }
    }

    #[test]
    fn preview_shows_action_id_type_and_replacement() {
        assert_eq!(
            preview_lines(&set()),
            vec![
                "Change set release-42 for stack web: 2 change(s)",
                "  Add      Queue     AWS::SQS::Queue",
                "  Modify   Database  AWS::RDS::DBInstance  replacement: True",
            ]
        );
        let md = preview_markdown(&set());
        assert!(
            md.contains("| Modify | Database | AWS::RDS::DBInstance | True |"),
            "{md}"
        );
        assert!(md.contains("| Add | Queue | AWS::SQS::Queue |  |"), "{md}");
    }

    #[test]
    fn no_op_change_sets_are_recognised() {
        let mut s = set();
        s.status = "FAILED".into();
        s.status_reason = "The submitted information didn't contain changes. Submit different information to create a change set.".into();
        assert!(s.is_no_op());
        s.status_reason = "Template error: resource X does not exist".into();
        assert!(!s.is_no_op());
    }
}
