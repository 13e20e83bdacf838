//! The `layers` input: each line a layer version ARN (as the original takes
//! them), `name:version` (`my-deps:3`), or a layer name or ARN without a
//! version, which means its latest version. Names are resolved with
//! GetLayerVersion / ListLayerVersions before anything changes, so a typo
//! fails the task naming the line instead of half-updating the function.

use anyhow::{Result, anyhow, bail};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerRef {
    /// A layer version ARN, sent as given.
    Arn(String),
    /// A layer name (or layer ARN without version) and a version.
    Version(String, i64),
    /// A layer name (or layer ARN without version): its latest version.
    Latest(String),
}

/// A layer name as Lambda allows it, or a layer ARN without version.
fn layer_name(s: &str) -> bool {
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.split(':').collect();
        return parts.len() == 7 && parts[2] == "lambda" && parts[5] == "layer";
    }
    !s.is_empty()
        && s.len() <= 140
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One line of `layers`.
pub fn parse(line: &str) -> Result<LayerRef> {
    let line = line.trim();
    let bad = || {
        anyhow!(
            "Input 'layers': '{line}' is not a layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>), a name with a version (my-layer:3), or a layer name (its latest version)."
        )
    };
    if line.starts_with("arn:") {
        let parts: Vec<&str> = line.split(':').collect();
        if parts.len() == 8 && parts[2] == "lambda" && parts[5] == "layer" {
            if parts[7].parse::<i64>().map(|v| v >= 1).unwrap_or(false) {
                return Ok(LayerRef::Arn(line.to_string()));
            }
            return Err(bad());
        }
        return if layer_name(line) {
            Ok(LayerRef::Latest(line.to_string()))
        } else {
            Err(bad())
        };
    }
    match line.rsplit_once(':') {
        Some((name, version)) => match version.parse::<i64>() {
            Ok(v) if v >= 1 && layer_name(name) => Ok(LayerRef::Version(name.to_string(), v)),
            _ => Err(bad()),
        },
        None if layer_name(line) => Ok(LayerRef::Latest(line.to_string())),
        None => Err(bad()),
    }
}

/// The layer version ARNs to configure, in the order given.
pub async fn resolve(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    layers: &[LayerRef],
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(layers.len());
    for layer in layers {
        let arn = match layer {
            LayerRef::Arn(arn) => arn.clone(),
            LayerRef::Version(name, version) => lambda
                .get_layer_version()
                .layer_name(name)
                .version_number(*version)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "Input 'layers': version {version} of layer '{name}' was not found: {}",
                        sdk_error_text(&e)
                    )
                })?
                .layer_version_arn()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("Lambda returned no ARN for layer '{name}' {version}"))?,
            LayerRef::Latest(name) => {
                let listed = lambda
                    .list_layer_versions()
                    .layer_name(name)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "Input 'layers': listing the versions of layer '{name}' failed: {}",
                            sdk_error_text(&e)
                        )
                    })?;
                let Some(latest) = listed
                    .layer_versions()
                    .iter()
                    .max_by_key(|v| v.version())
                    .and_then(|v| v.layer_version_arn())
                else {
                    bail!("Input 'layers': layer '{name}' has no versions in this region.");
                };
                latest.to_string()
            }
        };
        if !matches!(layer, LayerRef::Arn(_)) {
            console.info(&format!("Layer {}: {arn}", describe(layer)));
        }
        out.push(arn);
    }
    Ok(out)
}

fn describe(layer: &LayerRef) -> String {
    match layer {
        LayerRef::Arn(a) => a.clone(),
        LayerRef::Version(n, v) => format!("{n}:{v}"),
        LayerRef::Latest(n) => format!("{n} (latest)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_arns_names_with_versions_or_names() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:layer:deps:4";
        assert_eq!(parse(arn).unwrap(), LayerRef::Arn(arn.into()));
        assert_eq!(
            parse(" deps:3 ").unwrap(),
            LayerRef::Version("deps".into(), 3)
        );
        assert_eq!(
            parse("my_deps-2").unwrap(),
            LayerRef::Latest("my_deps-2".into())
        );
        let unversioned = "arn:aws:lambda:eu-west-1:123456789012:layer:deps";
        assert_eq!(
            parse(unversioned).unwrap(),
            LayerRef::Latest(unversioned.into())
        );
        for bad in [
            "deps:0",
            "deps:x",
            "my deps",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:1",
            "arn:aws:lambda:eu-west-1:123456789012:layer:deps:latest",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("Input 'layers':") && e.contains(bad), "{e}");
        }
    }
}
