//! ECRPullImage: pulls an image from an ECR repository, by tag or by
//! digest, with the agent's container client, and sets the full image
//! reference in `outputVariable`, as the AWS Toolkit task of the same name
//! does. Beyond the original: the password goes to the client on standard
//! input, the client logs out at the end whatever happened, and a bad tag
//! or digest fails naming the input before anything is run.

use anyhow::{Result, bail};
use vsts_aws_common::AwsSetup;
use vsts_ecr::{Client, Registry};
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::{Task, VariableOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub repository: String,
    /// `:tag` or `@sha256:...`.
    pub suffix: String,
    pub output_variable: Option<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let repository = inputs.required("repository")?;
        if !vsts_ecr::valid_repository(&repository) {
            bail!(
                "Input 'repository': '{repository}' is not an ECR repository name (2 to 256 lower-case letters, \
                 digits, and . _ - / between them)."
            );
        }
        let suffix = match inputs.pick("imageSource", &["imagetag", "imagedigest"])? {
            None | Some("imagetag") => {
                let tag = inputs.get("imageTag").unwrap_or_else(|| "latest".into());
                if !vsts_ecr::valid_tag(&tag) {
                    bail!(
                        "Input 'imageTag': '{tag}' is not an image tag (up to 128 letters, digits, _ . -, not \
                         starting with . or -)."
                    );
                }
                format!(":{tag}")
            }
            Some(_) => {
                let digest = inputs.required("imageDigest")?;
                if !vsts_ecr::valid_digest(&digest) {
                    bail!(
                        "Input 'imageDigest': '{digest}' is not an image digest (sha256: and 64 lower-case hex \
                         digits, as ECRPushImage's imageDigest output variable holds)."
                    );
                }
                format!("@{digest}")
            }
        };
        Ok(Params {
            repository,
            suffix,
            output_variable: inputs.get("outputVariable"),
        })
    }
}

pub const INPUT_LIMITS: &[Limit] = &[
    line("repository", 256, "an ECR repository name"),
    line("imageTag", 128, "an image tag"),
    line("imageDigest", 71, "an image digest (sha256:...)"),
    line(
        "outputVariable",
        ceiling::VARIABLE,
        "a pipeline variable name",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let client = Client::find(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &client, &params).await
}

pub async fn execute(task: &Task, setup: &AwsSetup, client: &Client, p: &Params) -> Result<()> {
    let console = &task.console;
    let ecr = vsts_ecr::ecr(task, setup);
    let registry = Registry::authorize(task, &ecr).await?;
    let image = format!("{}{}", p.repository, p.suffix);
    if p.suffix.starts_with('@') {
        console.info(&format!(
            "Pulling image from {} with digest '{image}'",
            registry.host
        ));
    } else {
        console.info(&format!(
            "Pulling image from {} with tag '{image}'",
            registry.host
        ));
    }
    let reference = format!("{}/{image}", registry.host);
    client.login(task, &registry).await?;
    console.info(&format!(
        "Pulling image '{reference}' from Elastic Container Registry"
    ));
    let pulled = client
        .check(&format!("Pulling {reference}"), &["pull", &reference], None)
        .await;
    client.logout(task, &registry).await;
    pulled?;
    if let Some(name) = &p.output_variable {
        console.info(&format!(
            "Setting output variable {name} with the pulled image tag {reference}"
        ));
        console.set_variable(name, &reference, VariableOptions::default());
    }
    console.info(&format!("Pulled {reference}."));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "ECRPullImage",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    #[test]
    fn tag_or_digest() {
        let repo = ("INPUT_REPOSITORY", "team/web");
        assert_eq!(params(&[repo]).unwrap().suffix, ":latest");
        assert_eq!(
            params(&[repo, ("INPUT_IMAGETAG", "v2")]).unwrap().suffix,
            ":v2"
        );
        let digest = format!("sha256:{}", "0f".repeat(32));
        let by_digest = [
            repo,
            ("INPUT_IMAGESOURCE", "imagedigest"),
            ("INPUT_IMAGEDIGEST", &digest),
        ];
        assert_eq!(params(&by_digest).unwrap().suffix, format!("@{digest}"));
        let err = |pairs: &[(&str, &str)]| params(pairs).unwrap_err().to_string();
        assert!(err(&[repo, ("INPUT_IMAGESOURCE", "imagedigest")]).contains("imageDigest"));
        assert!(
            err(&[
                repo,
                ("INPUT_IMAGESOURCE", "imagedigest"),
                ("INPUT_IMAGEDIGEST", "abc")
            ])
            .starts_with("Input 'imageDigest'")
        );
        assert!(err(&[repo, ("INPUT_IMAGETAG", "a b")]).starts_with("Input 'imageTag'"));
        assert!(err(&[("INPUT_REPOSITORY", "Web")]).starts_with("Input 'repository'"));
    }
}
