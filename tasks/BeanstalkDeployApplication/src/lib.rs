//! BeanstalkDeployApplication: deploys a new application version (made as
//! BeanstalkCreateApplicationVersion makes it, the bundle under
//! `<application>/<environment>/`) or an existing one to an environment,
//! then follows the environment until it is no longer Launching or
//! Updating, printing its events from the deployment's start.
//!
//! As the original: application and environment checked first, the label
//! defaults to `v<milliseconds>`, events polled every `eventPollingDelay`
//! seconds, "Failed to deploy application." fails the task, the label goes
//! to `outputVariable`. Beyond it: an existing version is checked before
//! the environment is touched; the deployment succeeds only when the
//! environment is Ready, runs the new version and its health is not Red;
//! a failure repeats the ERROR and FATAL events; a cancelled step aborts
//! the environment update (AbortEnvironmentUpdate: Beanstalk rolls back).

mod wait;

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use vsts_aws_common::{AwsSetup, sdk_error_text};
use vsts_beanstalk::Bundle;
use vsts_s3::transfer::Uploads;
use vsts_task::limits::{ceiling, line};
use vsts_task::{Task, VariableOptions};

vsts_beanstalk::input_limits!(
    line(
        "environmentName",
        40,
        "an Elastic Beanstalk environment name"
    ),
    line("eventPollingDelay", ceiling::NUMBER, "a number of seconds"),
);

#[derive(Debug)]
pub struct Params {
    pub application: String,
    pub environment: String,
    pub bundle: Bundle,
    pub label: String,
    pub description: Option<String>,
    pub output_variable: Option<String>,
    pub poll: Duration,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        let bundle = vsts_beanstalk::bundle_from_inputs(&i, true)?;
        let label = if bundle == Bundle::Existing {
            i.get("versionLabel").ok_or_else(|| {
                anyhow!("Input required: versionLabel (applicationType is 'version')")
            })?
        } else {
            vsts_beanstalk::version_label(i.get("versionLabel"))
        };
        let poll = i.int("eventPollingDelay", 1..=300)?.unwrap_or(5);
        Ok(Params {
            application: i.required("applicationName")?,
            environment: i.required("environmentName")?,
            bundle,
            label,
            description: i.get("description"),
            output_variable: i.get("outputVariable"),
            poll: Duration::from_secs(poll as u64),
        })
    }
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    let uploads = Uploads::default();
    let updating = std::sync::atomic::AtomicBool::new(false);
    let work = execute(&task, &setup, &params, &uploads, &updating);
    tokio::select! {
        result = work => result,
        signal = vsts_task::cancelled() => {
            let s3 = vsts_s3::client(&task, &setup, false, None);
            let aborted = uploads.abort_all(&s3).await;
            let mut what = format!("Cancelled ({signal})");
            if aborted > 0 {
                what.push_str(&format!("; {aborted} unfinished multipart upload(s) aborted"));
            }
            if updating.load(std::sync::atomic::Ordering::SeqCst) {
                let eb = vsts_aws_common::client!(aws_sdk_elasticbeanstalk, &task, &setup);
                what.push_str(&wait::abort(&task.console, &eb, &params).await);
            }
            Err(anyhow!("{what}."))
        }
    }
}

pub async fn execute(
    task: &Task,
    setup: &AwsSetup,
    p: &Params,
    uploads: &Uploads,
    updating: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let console = &task.console;
    let eb = vsts_aws_common::client!(aws_sdk_elasticbeanstalk, task, setup);
    let s3 = vsts_s3::client(task, setup, false, None);
    vsts_beanstalk::check_application(&eb, &p.application).await?;
    wait::environment(&eb, p).await?.ok_or_else(|| {
        anyhow!(
            "Input 'environmentName': environment '{}' of application '{}' was not found in this region.",
            p.environment,
            p.application
        )
    })?;
    if p.bundle == Bundle::Existing {
        let found = eb
            .describe_application_versions()
            .application_name(&p.application)
            .version_labels(&p.label)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Reading version '{}' failed: {}",
                    p.label,
                    sdk_error_text(&e)
                )
            })?;
        if found.application_versions().is_empty() {
            bail!(
                "Input 'versionLabel': application '{}' has no version '{}'.",
                p.application,
                p.label
            );
        }
        console.info(&format!("Deploying the existing version {}", p.label));
    } else {
        vsts_beanstalk::check_label_free(&eb, &p.application, &p.label).await?;
        let prefix = format!("{}/{}", p.application, p.environment);
        let staged =
            vsts_beanstalk::stage_bundle(task, &eb, &s3, uploads, &p.bundle, &prefix, &p.label)
                .await?
                .ok_or_else(|| anyhow!("no bundle to create a version from"))?;
        vsts_beanstalk::create_version(
            task,
            &eb,
            &p.application,
            &p.label,
            (&staged.0, &staged.1),
            p.description.as_deref(),
        )
        .await?;
    }
    let since = wait::latest_event_date(&eb, p).await?;
    eb.update_environment()
        .application_name(&p.application)
        .environment_name(&p.environment)
        .version_label(&p.label)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Updating environment '{}' to version '{}' failed: {}",
                p.environment,
                p.label,
                sdk_error_text(&e)
            )
        })?;
    updating.store(true, std::sync::atomic::Ordering::SeqCst);
    console.info(&format!(
        "Deploying version {} to environment {}",
        p.label, p.environment
    ));
    let summary = wait::follow(console, &eb, p, since).await?;
    updating.store(false, std::sync::atomic::Ordering::SeqCst);
    if let Some(name) = &p.output_variable {
        console.set_variable(name, &p.label, VariableOptions::default());
    }
    console.info(&summary);
    Ok(())
}
