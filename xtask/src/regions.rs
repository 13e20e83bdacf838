//! The region pick list of every task, from the partition data the AWS SDK
//! for Rust ships (the endpoint rules' `partitions`): a new region appears
//! in the list when the SDK crates are updated, with the name AWS gives it.
//! The list stays editable in the task editor, as in the original.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Partitions a pipeline can reach with ordinary credentials; the
/// isolated (ISO) partitions are left out.
const PARTITIONS: &[&str] = &["aws", "aws-us-gov", "aws-cn", "aws-eusc"];

/// (code, description) of every region, US regions first, as the
/// original's list.
pub fn regions() -> Result<&'static [(String, String)]> {
    static REGIONS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    if let Some(r) = REGIONS.get() {
        return Ok(r);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The aws-sdk-sts the workspace builds with.
    let source =
        crate::platforms::crate_source(&root, "aws-sdk-sts", None)?.join("src/endpoint_lib.rs");
    let list = from_endpoint_lib(&std::fs::read_to_string(&source)?)
        .with_context(|| format!("reading the partitions in {}", source.display()))?;
    Ok(REGIONS.get_or_init(|| list))
}

/// The regions in the partition JSON that the generated endpoint code
/// embeds as a byte string (`new_from_json(b"...")`).
fn from_endpoint_lib(source: &str) -> Result<Vec<(String, String)>> {
    let start = source
        .find("new_from_json(b\"")
        .context("no new_from_json(b\"...\") in the SDK's endpoint code")?
        + "new_from_json(b\"".len();
    let mut json = String::new();
    let mut chars = source[start..].chars();
    loop {
        match chars.next().context("the partition JSON does not end")? {
            '"' => break,
            '\\' => match chars.next().context("a dangling escape")? {
                'n' => json.push('\n'),
                't' => json.push('\t'),
                other => json.push(other),
            },
            c => json.push(c),
        }
    }
    let data: Value = serde_json::from_str(&json).context("the partition JSON")?;
    let mut out = Vec::new();
    for id in PARTITIONS {
        let Some(partition) = data["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == *id)
        else {
            continue;
        };
        let mut regions: Vec<(String, String)> = partition["regions"]
            .as_object()
            .into_iter()
            .flatten()
            // `aws-global` and the like are endpoint aliases, not regions.
            .filter(|(code, _)| !code.ends_with("-global"))
            .map(|(code, r)| {
                let name = r["description"].as_str().unwrap_or(code).to_string();
                (code.clone(), name)
            })
            .collect();
        regions.sort_by_key(|(code, _)| (!code.starts_with("us-"), code.clone()));
        out.extend(regions);
    }
    if out.is_empty() {
        bail!("no regions in the partition JSON");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_regions_come_from_the_sdk() {
        let regions = regions().unwrap();
        let name = |code: &str| {
            regions
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, n)| n.as_str())
        };
        assert_eq!(regions[0].0, "us-east-1");
        assert_eq!(name("eu-west-1"), Some("Europe (Ireland)"));
        assert_eq!(name("us-gov-west-1"), Some("AWS GovCloud (US-West)"));
        assert_eq!(name("cn-north-1"), Some("China (Beijing)"));
        // Regions newer than the hand-written list this replaced.
        assert!(name("mx-central-1").is_some(), "{regions:?}");
        assert!(name("ap-southeast-7").is_some(), "{regions:?}");
        assert!(!regions.iter().any(|(c, _)| c.ends_with("-global")));
        assert!(!regions.iter().any(|(c, _)| c.starts_with("us-iso")));
    }

    #[test]
    fn escapes_in_the_embedded_json() {
        let src = r#"x::new_from_json(b"{\"partitions\":[{\"id\":\"aws\",\"regionRegex\":\"^(us)\\\\-\\\\w+$\",\"regions\":{\"us-east-1\":{\"description\":\"US East (N. Virginia)\"},\"aws-global\":{\"description\":\"g\"}}}]}").expect("valid JSON")"#;
        assert_eq!(
            from_endpoint_lib(src).unwrap(),
            [("us-east-1".to_string(), "US East (N. Virginia)".to_string())]
        );
        assert!(from_endpoint_lib("nothing here").is_err());
    }
}
