//! ECRPushImage: tags a local image (by name and tag, or by id) with the
//! ECR repository's name and pushes it with the agent's container client,
//! as the AWS Toolkit task of the same name does.
//!
//! Beyond the original: the client logs in with the password on standard
//! input and logs out at the end whatever happened; `pushTag` takes several
//! tags (one per line or comma-separated), each pushed once; a missing local
//! image or a missing repository (without `autoCreateRepository`) fails
//! naming it before anything is pushed; the pushed image's digest is
//! printed and set in the output variables `imageDigest` and `imageUri`.

use anyhow::{Result, bail};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_ecr::{Client, Registry};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `name:tag`.
    Name(String),
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub source: Source,
    pub repository: String,
    /// At least one; each pushed once.
    pub tags: Vec<String>,
    pub auto_create: bool,
    pub remove_image: bool,
    pub output_variable: Option<String>,
}

impl Params {
    /// Every input error surfaces here, before anything is run.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let source = match inputs.pick("imageSource", &["imagename", "imageid"])? {
            None | Some("imagename") => {
                let name = local_reference("sourceImageName", inputs.required("sourceImageName")?)?;
                let tag = inputs
                    .get("sourceImageTag")
                    .unwrap_or_else(|| "latest".into());
                if !vsts_ecr::valid_tag(&tag) {
                    bail!(
                        "Input 'sourceImageTag': '{tag}' is not an image tag (up to 128 letters, digits, _ . -, not \
                         starting with . or -)."
                    );
                }
                Source::Name(format!("{name}:{tag}"))
            }
            Some(_) => Source::Id(local_reference(
                "sourceImageId",
                inputs.required("sourceImageId")?,
            )?),
        };
        let mut repository = inputs.required("repositoryName")?;
        if inputs.bool("forceDockerNamingConventions") {
            repository = vsts_ecr::force_docker_naming(&repository);
        }
        if !vsts_ecr::valid_repository(&repository) {
            bail!(
                "Input 'repositoryName': '{repository}' is not an ECR repository name (2 to 256 lower-case letters, \
                 digits, and . _ - / between them). Turn on forceDockerNamingConventions to have it converted."
            );
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in inputs.list("pushTag", ',') {
            if !vsts_ecr::valid_tag(&tag) {
                bail!(
                    "Input 'pushTag': '{tag}' is not an image tag (up to 128 letters, digits, _ . -, not starting \
                     with . or -). Give several tags one per line or separated by commas."
                );
            }
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.is_empty() {
            tags.push("latest".into());
        }
        Ok(Params {
            source,
            repository,
            tags,
            auto_create: inputs.bool("autoCreateRepository"),
            remove_image: inputs.bool("removeDockerImage"),
            output_variable: inputs.get("outputVariable"),
        })
    }

    fn source_ref(&self) -> &str {
        match &self.source {
            Source::Name(r) | Source::Id(r) => r,
        }
    }
}

/// A local image name or id goes to the client as an argument: one that
/// starts with `-` would be read as an option, and one with spaces is no
/// image reference.
fn local_reference(input: &str, value: String) -> Result<String> {
    if value.starts_with('-') || value.chars().any(char::is_whitespace) {
        bail!(
            "Input '{input}': '{value}' is not a local image name or id (no spaces, not starting with -), for \
             example myorg/web or 3f2a1b9c8d7e."
        );
    }
    Ok(value)
}

pub const INPUT_LIMITS: &[Limit] = &[
    line("sourceImageName", 255, "a local image name"),
    line("sourceImageTag", 128, "an image tag"),
    line("sourceImageId", 128, "a local image id"),
    line("repositoryName", 256, "an ECR repository name"),
    lines(
        "pushTag",
        ceiling::TEXT,
        "image tags, one per line or comma-separated",
    ),
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
    let source = p.source_ref();
    match &p.source {
        Source::Name(r) => console.info(&format!("Pushing image '{r}'")),
        Source::Id(id) => console.info(&format!("Pushing image with ID '{id}'")),
    }
    let ecr = vsts_ecr::ecr(task, setup);
    let registry = Registry::authorize(task, &ecr).await?;
    if !client.has_image(source).await? {
        bail!(
            "No local image '{source}' ({} image inspect found none). Build or pull it in an earlier step of this job, \
             on this agent.",
            client.name
        );
    }
    ensure_repository(task, &ecr, &p.repository, p.auto_create).await?;
    let targets: Vec<String> = p
        .tags
        .iter()
        .map(|t| format!("{}/{}:{t}", registry.host, p.repository))
        .collect();
    for target in &targets {
        console.info(&format!("Adding tag '{target}' to image '{source}'"));
        client
            .check(
                &format!("Tagging {source} as {target}"),
                &["tag", source, target],
                None,
            )
            .await?;
    }
    client.login(task, &registry).await?;
    let pushed = push_all(task, client, &targets).await;
    client.logout(task, &registry).await;
    let digest = pushed?;
    if let Some(name) = &p.output_variable {
        console.info(&format!(
            "Setting output variable {name} with the pushed image tag {}",
            targets[0]
        ));
        console.set_variable(name, &targets[0], VariableOptions::default());
    }
    match &digest {
        Some(d) => {
            let uri = format!("{}/{}@{d}", registry.host, p.repository);
            console.info(&format!("Pushed digest {d}: {uri}"));
            let output = VariableOptions {
                output: true,
                ..Default::default()
            };
            console.set_variable("imageDigest", d, output);
            console.set_variable("imageUri", &uri, output);
        }
        None => console.warning(&format!(
            "{} did not report the digest of the pushed image: imageDigest and imageUri are not set.",
            client.name
        )),
    }
    if p.remove_image {
        let mut remove: Vec<&str> = targets.iter().map(String::as_str).collect();
        remove.push(source);
        console.info(&format!(
            "Removing image '{source}' and untagging any references to the image"
        ));
        let mut args = vec!["rmi", "-f"];
        args.extend(remove);
        client
            .check("Removing the local image", &args, None)
            .await?;
    }
    console.info(&format!(
        "Pushed {source} to {} as {}.",
        p.repository,
        p.tags.join(", ")
    ));
    Ok(())
}

async fn push_all(task: &Task, client: &Client, targets: &[String]) -> Result<Option<String>> {
    let mut digest = None;
    for target in targets {
        task.console.info(&format!(
            "Pushing image '{target}' to Elastic Container Registry"
        ));
        let d = client.push(target).await?;
        digest = digest.or(d);
    }
    Ok(digest)
}

/// Checks that the repository exists, creating it when asked.
async fn ensure_repository(
    task: &Task,
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    create: bool,
) -> Result<()> {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    task.console
        .info(&format!("Testing existence of repository '{repository}'"));
    let err = match ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    match err.code() {
        Some("RepositoryNotFoundException") if create => {
            task.console
                .info("Repository not found, attempting to create");
            ecr.create_repository()
                .repository_name(repository)
                .send()
                .await
                .sdk_context(|| format!("Creating repository {repository}"))?;
            Ok(())
        }
        Some("RepositoryNotFoundException") => bail!(
            "Repository '{repository}' does not exist in this registry. Create it, or turn on \
             autoCreateRepository (Create repository if it does not exist)."
        ),
        // Without ecr:DescribeRepositories the push itself tells.
        Some("AccessDeniedException") if !create => {
            task.console.debug(&format!(
                "cannot check repository {repository} (ecr:DescribeRepositories denied); pushing anyway"
            ));
            Ok(())
        }
        _ => Err(err)
            .sdk_context(|| format!("Error testing for repository existence ({repository})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "ECRPushImage",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    #[test]
    fn sources_tags_and_names() {
        let repo = ("INPUT_REPOSITORYNAME", "web");
        let p = params(&[("INPUT_SOURCEIMAGENAME", "app"), repo]).unwrap();
        assert_eq!(p.source, Source::Name("app:latest".into()));
        assert_eq!(p.tags, ["latest"]);
        let p = params(&[
            ("INPUT_IMAGESOURCE", "imageid"),
            ("INPUT_SOURCEIMAGEID", "3f2a"),
            repo,
            ("INPUT_PUSHTAG", "v1, latest\nv1\n$(x)"),
        ]);
        assert!(
            p.unwrap_err()
                .to_string()
                .starts_with("Input 'pushTag': '$(x)'")
        );
        let p = params(&[
            ("INPUT_IMAGESOURCE", "imageid"),
            ("INPUT_SOURCEIMAGEID", "3f2a"),
            repo,
            ("INPUT_PUSHTAG", "v1, latest\nv1\n"),
        ])
        .unwrap();
        assert_eq!(p.source, Source::Id("3f2a".into()));
        assert_eq!(p.tags, ["v1", "latest"]);
        let bad = params(&[
            ("INPUT_SOURCEIMAGENAME", "app"),
            ("INPUT_REPOSITORYNAME", "My App"),
        ]);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("forceDockerNamingConventions")
        );
        let p = params(&[
            ("INPUT_SOURCEIMAGENAME", "app"),
            ("INPUT_REPOSITORYNAME", "My App"),
            ("INPUT_FORCEDOCKERNAMINGCONVENTIONS", "true"),
        ])
        .unwrap();
        assert_eq!(p.repository, "myapp");
        assert!(
            params(&[repo])
                .unwrap_err()
                .to_string()
                .contains("sourceImageName")
        );
        let err = |pairs: &[(&str, &str)]| params(pairs).unwrap_err().to_string();
        assert!(
            err(&[("INPUT_SOURCEIMAGENAME", "--help"), repo])
                .starts_with("Input 'sourceImageName'")
        );
        assert!(
            err(&[
                ("INPUT_SOURCEIMAGENAME", "app"),
                ("INPUT_SOURCEIMAGETAG", "-x"),
                repo
            ])
            .starts_with("Input 'sourceImageTag'")
        );
        assert!(
            err(&[
                ("INPUT_IMAGESOURCE", "imageid"),
                ("INPUT_SOURCEIMAGEID", "a b"),
                repo
            ])
            .starts_with("Input 'sourceImageId'")
        );
    }
}
