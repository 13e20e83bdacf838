//! CodeDeployDeployApplication: deploys a revision with AWS CodeDeploy and
//! follows it to the end.
//!
//! As the original: the application and deployment group are checked first
//! (and an S3 revision's object), a workspace folder is zipped into the
//! agent's temporary folder as `<application>.v<milliseconds>.zip` and
//! uploaded to `bucketName`/`bundlePrefix` (an archive file under its own
//! name), the deployment id goes to `outputVariable`, and the task fails
//! unless the deployment succeeds within `timeoutInMins`.
//!
//! Beyond the original: the folder is zipped deterministically and the
//! upload is the shared S3 transfer (multipart with CRC32 parts, aborted on
//! failure or cancellation); the revision is pinned to the uploaded
//! object's ETag and version; the wait prints the deployment's status, its
//! instance counts and each instance's lifecycle events as they change; a
//! failure names each failed instance's lifecycle event, script, message
//! and log tail; a timeout or a cancelled step stops the deployment
//! (rolling back the instances it updated) instead of leaving it running.

mod revision;
mod wait;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use aws_sdk_codedeploy::types::{FileExistsBehavior, RevisionLocation, RevisionLocationType};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_s3::transfer::Uploads;
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::{Console, Task, VariableOptions};

pub use revision::{Revision, bundle_type};

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("applicationName", 100, "a CodeDeploy application name"),
    line(
        "deploymentGroupName",
        100,
        "a CodeDeploy deployment group name",
    ),
    line("revisionBundle", ceiling::PATH, "a file or folder path"),
    line("bucketName", 63, "an S3 bucket name"),
    line("bundlePrefix", 900, "an S3 key prefix"),
    line("bundleKey", 1024, "an S3 object key"),
    line("description", 1024, "a deployment description"),
    line("timeoutInMins", ceiling::NUMBER, "a number of minutes"),
    line("outputVariable", ceiling::VARIABLE, "a variable name"),
];

/// Where the revision comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder (zipped) or an archive in the workspace, uploaded under
    /// `bundlePrefix`.
    Workspace {
        path: std::path::PathBuf,
        prefix: String,
        acl: Option<String>,
    },
    /// An archive already in the bucket.
    S3 { key: String },
}

#[derive(Debug)]
pub struct Params {
    pub application: String,
    pub group: String,
    pub source: Source,
    pub bucket: String,
    pub description: Option<String>,
    pub file_exists: String,
    pub update_outdated_only: bool,
    pub ignore_stop_failures: bool,
    pub timeout: Duration,
    pub output_variable: Option<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        let source = match i
            .pick("deploymentRevisionSource", &["workspace", "s3"])?
            .unwrap_or("workspace")
        {
            "s3" => {
                let key = i.get("bundleKey").ok_or_else(|| {
                    anyhow!("Input required: bundleKey (deploymentRevisionSource is 's3')")
                })?;
                revision::bundle_type(&key, "bundleKey")?;
                Source::S3 { key }
            }
            _ => {
                let path = i.path("revisionBundle").ok_or_else(|| {
                    anyhow!(
                        "Input required: revisionBundle (deploymentRevisionSource is 'workspace')"
                    )
                })?;
                if !path.exists() {
                    bail!("Input 'revisionBundle': {} does not exist.", path.display());
                }
                if path.is_file() {
                    revision::bundle_type(&path.to_string_lossy(), "revisionBundle")?;
                }
                let acl = i
                    .pick(
                        "filesAcl",
                        &[
                            "none",
                            "private",
                            "public-read",
                            "public-read-write",
                            "authenticated-read",
                            "aws-exec-read",
                            "bucket-owner-read",
                            "bucket-owner-full-control",
                        ],
                    )?
                    .filter(|a| *a != "none")
                    .map(str::to_string);
                Source::Workspace {
                    path,
                    prefix: i.get("bundlePrefix").unwrap_or_default(),
                    acl,
                }
            }
        };
        let timeout = match i.get("timeoutInMins") {
            None => 30.0,
            Some(text) => match text.trim().parse::<f64>() {
                Ok(m) if m > 0.0 && m <= 2880.0 => m,
                _ => bail!(
                    "Input 'timeoutInMins': '{text}' is not a number of minutes from more than 0 to 2880 (default 30)."
                ),
            },
        };
        Ok(Params {
            application: i.required("applicationName")?,
            group: i.required("deploymentGroupName")?,
            source,
            bucket: i.required("bucketName")?,
            description: i.get("description"),
            file_exists: i
                .pick("fileExistsBehavior", &["DISALLOW", "OVERWRITE", "RETAIN"])?
                .unwrap_or("DISALLOW")
                .to_string(),
            update_outdated_only: i.bool("updateOutdatedInstancesOnly"),
            ignore_stop_failures: i.bool("ignoreApplicationStopFailures"),
            timeout: Duration::from_secs_f64(timeout * 60.0),
            output_variable: i.get("outputVariable"),
        })
    }
}

/// What a cancellation must clean up: multipart uploads in flight, and the
/// deployment once it is created.
#[derive(Clone, Default)]
pub struct InFlight {
    pub uploads: Uploads,
    pub deployment: Arc<Mutex<Option<String>>>,
}

impl InFlight {
    fn deployment(&self) -> Option<String> {
        self.deployment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    let in_flight = InFlight::default();
    let work = execute(&task, &setup, &params, &in_flight);
    tokio::select! {
        result = work => result,
        signal = vsts_task::cancelled() => {
            let s3 = vsts_s3::client(&task, &setup, false, None);
            let aborted = in_flight.uploads.abort_all(&s3).await;
            let mut what = format!("Cancelled ({signal})");
            if aborted > 0 {
                what.push_str(&format!("; {aborted} unfinished multipart upload(s) aborted"));
            }
            if let Some(id) = in_flight.deployment() {
                let codedeploy = vsts_aws_common::client!(aws_sdk_codedeploy, &task, &setup);
                what.push_str(&wait::stop(&task.console, &codedeploy, &id).await);
            }
            Err(anyhow!("{what}."))
        }
    }
}

pub async fn execute(
    task: &Task,
    setup: &AwsSetup,
    p: &Params,
    in_flight: &InFlight,
) -> Result<()> {
    let console = &task.console;
    let codedeploy = vsts_aws_common::client!(aws_sdk_codedeploy, task, setup);
    let s3 = vsts_s3::client(task, setup, false, None);
    check_exists(&codedeploy, p).await?;
    let revision = revision::prepare(task, &s3, p, &in_flight.uploads).await?;

    console.info(&format!(
        "Deploying s3://{}/{} ({}) to deployment group {} of application {}",
        p.bucket,
        revision.key,
        revision.bundle_type.as_str(),
        p.group,
        p.application
    ));
    let asked_at = std::time::SystemTime::now();
    let created = codedeploy
        .create_deployment()
        .application_name(&p.application)
        .deployment_group_name(&p.group)
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::S3)
                .s3_location(revision.location(&p.bucket))
                .build(),
        )
        .set_description(p.description.clone())
        .file_exists_behavior(FileExistsBehavior::from(p.file_exists.as_str()))
        .ignore_application_stop_failures(p.ignore_stop_failures)
        .update_outdated_instances_only(p.update_outdated_only)
        .send()
        .await;
    let id = match created {
        Ok(out) => out
            .deployment_id()
            .ok_or_else(|| anyhow!("CodeDeploy returned no deployment id"))?
            .to_string(),
        // CreateDeployment has no idempotency token: when the SDK retried
        // it after losing the answer, the group has an active deployment,
        // ours when it deploys exactly this revision and began just now.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_deployment_limit_exceeded_exception()) =>
        {
            match ours_in_progress(&codedeploy, p, &revision, &p.bucket, asked_at).await {
                Some(id) => {
                    console.info(&format!(
                        "Deployment {id} of this revision is already under way (a retried request): following it."
                    ));
                    id
                }
                None => bail!(
                    "Creating the deployment to '{}' failed: {}",
                    p.group,
                    sdk_error_text(&e)
                ),
            }
        }
        Err(e) => bail!(
            "Creating the deployment to '{}' failed: {}",
            p.group,
            sdk_error_text(&e)
        ),
    };
    *in_flight
        .deployment
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
    console.info(&format!(
        "Deployment {id} started: https://console.aws.amazon.com/codesuite/codedeploy/deployments/{id}?region={}",
        setup.region
    ));
    if let Some(name) = &p.output_variable {
        console.set_variable(name, &id, VariableOptions::default());
    }
    let finished = wait::follow(console, &codedeploy, &id, p.timeout).await?;
    in_flight
        .deployment
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    console.info(&format!(
        "Deployment {id} of {} to {} succeeded{}.",
        p.application, p.group, finished
    ));
    Ok(())
}

/// An active deployment of `revision` to the group that began after
/// `asked_at` (a minute of clock skew allowed).
async fn ours_in_progress(
    codedeploy: &aws_sdk_codedeploy::Client,
    p: &Params,
    revision: &Revision,
    bucket: &str,
    asked_at: std::time::SystemTime,
) -> Option<String> {
    use aws_sdk_codedeploy::types::DeploymentStatus;
    let listed = codedeploy
        .list_deployments()
        .application_name(&p.application)
        .deployment_group_name(&p.group)
        .include_only_statuses(DeploymentStatus::Created)
        .include_only_statuses(DeploymentStatus::Queued)
        .include_only_statuses(DeploymentStatus::InProgress)
        .send()
        .await
        .ok()?;
    let since = asked_at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64
        - 60;
    let wanted = revision.location(bucket);
    for id in listed.deployments().iter().take(10) {
        let Ok(got) = codedeploy.get_deployment().deployment_id(id).send().await else {
            continue;
        };
        let Some(info) = got.deployment_info() else {
            continue;
        };
        let same = info
            .revision()
            .and_then(|r| r.s3_location())
            .is_some_and(|l| {
                l.bucket() == wanted.bucket()
                    && l.key() == wanted.key()
                    && l.e_tag() == wanted.e_tag()
            });
        let recent = info.create_time().is_some_and(|t| t.secs() >= since);
        if same && recent {
            return Some(id.clone());
        }
    }
    None
}

/// The application and deployment group exist (as the original checks,
/// with CodeDeploy's own reason when it says otherwise).
async fn check_exists(codedeploy: &aws_sdk_codedeploy::Client, p: &Params) -> Result<()> {
    codedeploy
        .get_application()
        .application_name(&p.application)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Input 'applicationName': application '{}' was not found: {}",
                p.application,
                sdk_error_text(&e)
            )
        })?;
    codedeploy
        .get_deployment_group()
        .application_name(&p.application)
        .deployment_group_name(&p.group)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Input 'deploymentGroupName': deployment group '{}' of application '{}' was not found: {}",
                p.group,
                p.application,
                sdk_error_text(&e)
            )
        })?;
    Ok(())
}

/// A console line about stopping, for the cancellation's message.
pub(crate) fn stopped_text(console: &Console, id: &str, result: Result<()>) -> String {
    match result {
        Ok(()) => format!("; deployment {id} stopped, its updated instances rolled back"),
        Err(e) => {
            console.warning(&format!("Stopping deployment {id} failed: {e:#}"));
            format!("; stopping deployment {id} failed, it may still be running")
        }
    }
}
