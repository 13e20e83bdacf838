//! BeanstalkCreateApplicationVersion: an application version from a Web
//! Deploy archive, `dotnet publish` output (Windows or Linux), or a bundle
//! already in S3, as the original makes it: the bundle goes to Elastic
//! Beanstalk's storage bucket as `<application>/<bundle>-<label>.zip`, the
//! label defaults to `v<milliseconds>`, and `outputVariable` receives it.
//! Beyond the original: bundles are zipped deterministically, uploaded with
//! the shared multipart transfer (aborted on failure or cancellation), and
//! an S3 bundle is checked before the version is created.

use anyhow::{Result, anyhow};
use vsts_aws_common::AwsSetup;
use vsts_beanstalk::Bundle;
use vsts_s3::transfer::Uploads;
use vsts_task::{Task, VariableOptions};

vsts_beanstalk::input_limits!();

#[derive(Debug)]
pub struct Params {
    pub application: String,
    pub bundle: Bundle,
    pub label: String,
    pub description: Option<String>,
    pub output_variable: Option<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        Ok(Params {
            application: i.required("applicationName")?,
            bundle: vsts_beanstalk::bundle_from_inputs(&i, false)?,
            label: vsts_beanstalk::version_label(i.get("versionLabel")),
            description: i.get("description"),
            output_variable: i.get("outputVariable"),
        })
    }
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    let uploads = Uploads::default();
    let work = execute(&task, &setup, &params, &uploads);
    tokio::select! {
        result = work => result,
        signal = vsts_task::cancelled() => {
            let s3 = vsts_s3::client(&task, &setup, false, None);
            let aborted = uploads.abort_all(&s3).await;
            Err(anyhow!("Cancelled ({signal}); {aborted} unfinished multipart upload(s) aborted; no version was created."))
        }
    }
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params, uploads: &Uploads) -> Result<()> {
    let eb = vsts_aws_common::client!(aws_sdk_elasticbeanstalk, task, setup);
    let s3 = vsts_s3::client(task, setup, false, None);
    vsts_beanstalk::check_application(&eb, &p.application).await?;
    vsts_beanstalk::check_label_free(&eb, &p.application, &p.label).await?;
    let staged =
        vsts_beanstalk::stage_bundle(task, &eb, &s3, uploads, &p.bundle, &p.application, &p.label)
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
    if let Some(name) = &p.output_variable {
        task.console
            .set_variable(name, &p.label, VariableOptions::default());
    }
    Ok(())
}
