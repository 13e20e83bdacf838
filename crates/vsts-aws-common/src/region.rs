//! The region chain: task input `regionName`, pipeline variable `AWS.Region`,
//! `AWS_REGION`, `AWS_DEFAULT_REGION`, instance metadata. First match wins.
//!
//! The task input always wins over an `AWS_REGION` that the machine sets (the
//! incumbent gets this wrong on EKS agents).

use std::fmt;

use anyhow::{Result, bail};
use vsts_task::{Env, Inputs, Variables};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    TaskInput,
    PipelineVariable,
    EnvAwsRegion,
    EnvAwsDefaultRegion,
    InstanceMetadata,
}

impl fmt::Display for RegionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionSource::TaskInput => "task input regionName",
            RegionSource::PipelineVariable => "pipeline variable AWS.Region",
            RegionSource::EnvAwsRegion => "environment variable AWS_REGION",
            RegionSource::EnvAwsDefaultRegion => "environment variable AWS_DEFAULT_REGION",
            RegionSource::InstanceMetadata => "EC2 instance metadata",
        })
    }
}

/// The region from the sources that need no network, in order.
pub fn region_from_env(env: &Env) -> Result<Option<(String, RegionSource)>> {
    let candidates = [
        (Inputs::new(env).get("regionName"), RegionSource::TaskInput),
        (
            Variables::new(env).declared("AWS.Region").map(|v| v.value),
            RegionSource::PipelineVariable,
        ),
        (
            env.get("AWS_REGION").map(str::to_string),
            RegionSource::EnvAwsRegion,
        ),
        (
            env.get("AWS_DEFAULT_REGION").map(str::to_string),
            RegionSource::EnvAwsDefaultRegion,
        ),
    ];
    for (value, source) in candidates {
        if let Some(v) = value {
            return Ok(Some((check(&v, source)?, source)));
        }
    }
    Ok(None)
}

fn check(raw: &str, source: RegionSource) -> Result<String> {
    let region = raw.trim().to_ascii_lowercase();
    let well_formed = !region.is_empty()
        && region.contains('-')
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if !well_formed {
        bail!(
            "The region '{raw}' from the {source} is not a region code (for example us-east-2 or eu-west-1)."
        );
    }
    Ok(region)
}

/// The error when no source gives a region.
pub fn no_region_error() -> anyhow::Error {
    anyhow::anyhow!(
        "No AWS region is set. Set the task input 'regionName' (Region), or the pipeline variable AWS.Region, \
         or the environment variable AWS_REGION or AWS_DEFAULT_REGION on the agent, \
         or run the agent on an EC2 instance whose instance metadata gives the region."
    )
}

/// The whole chain, instance metadata last.
pub async fn resolve_region(env: &Env, network: &crate::Network) -> Result<(String, RegionSource)> {
    if let Some(found) = region_from_env(env)? {
        return Ok(found);
    }
    let pc = aws_config::provider_config::ProviderConfig::without_region()
        .with_http_client(network.http_client());
    let imds = aws_config::imds::region::ImdsRegionProvider::builder()
        .configure(&pc)
        .build();
    match imds.region().await {
        Some(r) => Ok((
            check(r.as_ref(), RegionSource::InstanceMetadata)?,
            RegionSource::InstanceMetadata,
        )),
        None => Err(no_region_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = Vec<(&'a str, &'a str)>;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn precedence_table() {
        use RegionSource::*;
        let public_var = ("VSTS_PUBLIC_VARIABLES", r#"["AWS.Region"]"#);
        let cases: Vec<(Pairs, Option<(&str, RegionSource)>)> = vec![
            (
                vec![
                    ("INPUT_REGIONNAME", "EU-West-1"),
                    ("AWS_REGION", "us-east-1"),
                ],
                Some(("eu-west-1", TaskInput)),
            ),
            (
                vec![
                    ("INPUT_REGIONNAME", ""),
                    ("AWS_REGION", "us-east-1"),
                    public_var,
                ],
                Some(("us-east-1", PipelineVariable)),
            ),
            (
                vec![
                    ("SECRET_AWS_REGION", "ap-south-1"),
                    ("AWS_DEFAULT_REGION", "us-east-1"),
                ],
                Some(("ap-south-1", PipelineVariable)),
            ),
            (
                vec![
                    ("AWS_REGION", "us-east-1"),
                    ("AWS_DEFAULT_REGION", "eu-north-1"),
                ],
                Some(("us-east-1", EnvAwsRegion)),
            ),
            (
                vec![("AWS_DEFAULT_REGION", "eu-north-1")],
                Some(("eu-north-1", EnvAwsDefaultRegion)),
            ),
            (vec![("INPUT_REGIONNAME", "  ")], None),
        ];
        for (pairs, want) in cases {
            let got = region_from_env(&env(&pairs)).unwrap();
            assert_eq!(
                got.as_ref().map(|(r, s)| (r.as_str(), *s)),
                want,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_malformed_region_names_its_source() {
        let err = region_from_env(&env(&[("INPUT_REGIONNAME", "eu west 1")])).unwrap_err();
        assert!(err.to_string().contains("task input regionName"), "{err}");
    }

    #[test]
    fn the_error_names_every_way_to_set_a_region() {
        let text = no_region_error().to_string();
        for way in [
            "regionName",
            "AWS.Region",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "instance metadata",
        ] {
            assert!(text.contains(way), "{way}");
        }
    }
}
