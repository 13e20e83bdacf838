//! What BeanstalkCreateApplicationVersion and BeanstalkDeployApplication
//! share: the application check, the version label the original makes
//! (`v<milliseconds>`), the deployment bundle of each application type
//! (a Web Deploy archive as it is; `dotnet publish` output for Windows with
//! the `aws-windows-deployment-manifest.json` the original writes, or for
//! Linux zipped as it is; both zipped deterministically), its upload to the
//! Beanstalk storage bucket under the original's key, and the application
//! version itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_elasticbeanstalk::types::S3Location;
use vsts_aws_common::sdk_error_text;
use vsts_s3::human_bytes;
use vsts_s3::transfer::{FileObject, Uploads};
use vsts_task::{Inputs, Task};

/// Declares the task's `INPUT_LIMITS`: the inputs both Beanstalk tasks
/// take, then the task's own.
#[macro_export]
macro_rules! input_limits {
    ($($extra:expr),* $(,)?) => {
        /// What each free-text input may hold, checked before anything else.
        pub const INPUT_LIMITS: &[vsts_task::limits::Limit] = &[
            vsts_task::limits::line("applicationName", 100, "an Elastic Beanstalk application name"),
            vsts_task::limits::line("webDeploymentArchive", vsts_task::limits::ceiling::PATH, "a file path"),
            vsts_task::limits::line("dotnetPublishPath", vsts_task::limits::ceiling::PATH, "a file or folder path"),
            vsts_task::limits::line("deploymentBundleBucket", 63, "an S3 bucket name"),
            vsts_task::limits::line("deploymentBundleKey", 1024, "an S3 object key"),
            vsts_task::limits::line("versionLabel", 100, "Elastic Beanstalk's 100 characters for a version label"),
            vsts_task::limits::line("description", 200, "Elastic Beanstalk's 200 characters for a description"),
            vsts_task::limits::line("outputVariable", vsts_task::limits::ceiling::VARIABLE, "a variable name"),
            $($extra),*
        ];
    };
}

/// Where the application version's bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bundle {
    /// `aspnet`: a Web Deploy (msdeploy) archive, uploaded as it is.
    WebDeploy(PathBuf),
    /// `aspnetCoreWindows`: `dotnet publish` output (a folder, or one
    /// archive), bundled with the Windows deployment manifest.
    CoreWindows(PathBuf),
    /// `aspnetCoreLinux`: `dotnet publish` output, a folder zipped as it is
    /// or an archive uploaded as it is.
    CoreLinux(PathBuf),
    /// `s3`: a bundle already in S3.
    S3 { bucket: String, key: String },
    /// `version` (deploy only): an application version that exists.
    Existing,
}

/// The application types of the original, with `version` only for deploy.
pub fn bundle_from_inputs(i: &Inputs, allow_existing: bool) -> Result<Bundle> {
    let allowed: &[&'static str] = if allow_existing {
        &[
            "aspnet",
            "aspnetCoreWindows",
            "aspnetCoreLinux",
            "s3",
            "version",
        ]
    } else {
        &["aspnet", "aspnetCoreWindows", "aspnetCoreLinux", "s3"]
    };
    let path = |name: &str, kind: &str| -> Result<PathBuf> {
        let p = i
            .path(name)
            .ok_or_else(|| anyhow!("Input required: {name} (applicationType is '{kind}')"))?;
        if !p.exists() {
            bail!("Input '{name}': {} does not exist.", p.display());
        }
        Ok(p)
    };
    Ok(
        match i.pick("applicationType", allowed)?.unwrap_or("aspnet") {
            "aspnetCoreWindows" => {
                Bundle::CoreWindows(path("dotnetPublishPath", "aspnetCoreWindows")?)
            }
            "aspnetCoreLinux" => Bundle::CoreLinux(path("dotnetPublishPath", "aspnetCoreLinux")?),
            "s3" => Bundle::S3 {
                bucket: i.get("deploymentBundleBucket").ok_or_else(|| {
                    anyhow!("Input required: deploymentBundleBucket (applicationType is 's3')")
                })?,
                key: i.get("deploymentBundleKey").ok_or_else(|| {
                    anyhow!("Input required: deploymentBundleKey (applicationType is 's3')")
                })?,
            },
            "version" => Bundle::Existing,
            _ => {
                let p = path("webDeploymentArchive", "aspnet")?;
                if !p.is_file() {
                    bail!(
                        "Input 'webDeploymentArchive': {} is a folder; give the Web Deploy archive (.zip) that msbuild made.",
                        p.display()
                    );
                }
                Bundle::WebDeploy(p)
            }
        },
    )
}

/// The version label: the one given, or `v<milliseconds since 1970>` as
/// the original makes it.
pub fn version_label(given: Option<String>) -> String {
    given.unwrap_or_else(|| {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        format!("v{millis}")
    })
}

/// Fails naming `applicationName` when the application does not exist.
pub async fn check_application(eb: &aws_sdk_elasticbeanstalk::Client, app: &str) -> Result<()> {
    let found = eb
        .describe_applications()
        .application_names(app)
        .send()
        .await
        .map_err(|e| anyhow!("Reading application '{app}' failed: {}", sdk_error_text(&e)))?;
    // Some emulators ignore the name filter: look for the name.
    if !found
        .applications()
        .iter()
        .any(|a| a.application_name() == Some(app))
    {
        bail!("Input 'applicationName': application '{app}' was not found in this region.");
    }
    Ok(())
}

/// The Windows deployment manifest the original writes for an ASP.NET Core
/// bundle (`appBundle`: the published folder or archive inside the zip).
pub fn windows_manifest(app_bundle: &str) -> String {
    serde_json::json!({
        "manifestVersion": 1,
        "deployments": {
            "aspNetCoreWeb": [{
                "name": "app",
                "parameters": {
                    "appBundle": app_bundle,
                    "iisPath": "/",
                    "iisWebSite": "Default Web Site"
                }
            }]
        }
    })
    .to_string()
}

/// The archive to upload for a local bundle type: (file, made by us).
/// Zips go into `temp` as `ebDeploymentBundle.zip`, the original's name.
pub fn local_archive(bundle: &Bundle, temp: &Path) -> Result<Option<(PathBuf, bool)>> {
    let dest = temp.join("ebDeploymentBundle.zip");
    let made = |files: Vec<(String, PathBuf)>, dir: &Path| -> Result<(PathBuf, bool)> {
        let result = (|| {
            let file = std::fs::File::create(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            let mut w = vsts_bundle::zip_files(
                &files,
                std::io::BufWriter::new(file),
                "dotnetPublishPath",
                dir,
            )?;
            std::io::Write::flush(&mut w)?;
            Ok((dest.clone(), true))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&dest);
        }
        result
    };
    Ok(match bundle {
        Bundle::WebDeploy(p) => Some((p.clone(), false)),
        Bundle::CoreLinux(p) if p.is_file() => Some((p.clone(), false)),
        Bundle::CoreLinux(dir) => Some(made(vsts_bundle::files(dir)?, dir)?),
        Bundle::CoreWindows(p) => {
            let (mut files, app_bundle, dir) = if p.is_file() {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    vec![(name.clone(), p.clone())],
                    format!("./{name}"),
                    p.parent().unwrap_or(p).to_path_buf(),
                )
            } else {
                let files = vsts_bundle::files(p)?
                    .into_iter()
                    .map(|(rel, path)| (format!("app/{rel}"), path))
                    .collect::<Vec<_>>();
                if files.is_empty() {
                    bail!(
                        "Input 'dotnetPublishPath': {} has no files to zip.",
                        p.display()
                    );
                }
                (files, "/app/".to_string(), p.clone())
            };
            let manifest = temp.join("aws-windows-deployment-manifest.json");
            std::fs::write(&manifest, windows_manifest(&app_bundle))
                .with_context(|| format!("writing {}", manifest.display()))?;
            files.push((
                "aws-windows-deployment-manifest.json".to_string(),
                manifest.clone(),
            ));
            files.sort();
            let out = made(files, &dir);
            let _ = std::fs::remove_file(&manifest);
            Some(out?)
        }
        Bundle::S3 { .. } | Bundle::Existing => None,
    })
}

/// The original's key for an uploaded bundle: `<prefix>/<archive name
/// without .zip>-<label>.zip` (prefix: the application, and for a deploy
/// the environment too).
pub fn bundle_key(prefix: &str, archive: &Path, label: &str) -> String {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".zip").unwrap_or(&name);
    format!("{prefix}/{stem}-{label}.zip")
}

/// Where the version's bundle is: uploaded to Beanstalk's storage bucket
/// (CreateStorageLocation) for the local types, or the given S3 object
/// (checked to exist). `None` for an existing version.
pub async fn stage_bundle(
    task: &Task,
    eb: &aws_sdk_elasticbeanstalk::Client,
    s3: &aws_sdk_s3::Client,
    uploads: &Uploads,
    bundle: &Bundle,
    key_prefix: &str,
    label: &str,
) -> Result<Option<(String, String)>> {
    let console = &task.console;
    if let Bundle::S3 { bucket, key } = bundle {
        s3.head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Input 'deploymentBundleKey': s3://{bucket}/{key} was not found: {}",
                    sdk_error_text(&e)
                )
            })?;
        return Ok(Some((bucket.clone(), key.clone())));
    }
    // A folder of this run's own: the bundle keeps the original's name
    // (it is in the key) without meeting another run's.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let temp = task
        .temp_dir()
        .join(format!("eb-bundle-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove_dir = RemoveDir(temp.clone());
    let bundle_copy = bundle.clone();
    let temp_copy = temp.clone();
    let Some((archive, made)) =
        tokio::task::spawn_blocking(move || local_archive(&bundle_copy, &temp_copy)).await??
    else {
        return Ok(None);
    };
    let size = std::fs::metadata(&archive)
        .with_context(|| format!("reading {}", archive.display()))?
        .len();
    if made {
        console.info(&format!(
            "Bundle {} ({})",
            archive.display(),
            human_bytes(size)
        ));
    }
    let bucket = eb
        .create_storage_location()
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "Finding Elastic Beanstalk's storage bucket (CreateStorageLocation) failed: {}",
                sdk_error_text(&e)
            )
        })?
        .s3_bucket()
        .ok_or_else(|| anyhow!("Elastic Beanstalk returned no storage bucket"))?
        .to_string();
    console.info(&format!("Elastic Beanstalk's storage bucket: {bucket}"));
    let key = bundle_key(key_prefix, &archive, label);
    let file = FileObject {
        path: archive,
        size,
        bucket: bucket.clone(),
        key: key.clone(),
    };
    vsts_s3::transfer::upload_file(console, s3, uploads, &file, None).await?;
    Ok(Some((bucket, key)))
}

/// The bundle of version `label` of `app`, when the version exists.
async fn existing_version(
    eb: &aws_sdk_elasticbeanstalk::Client,
    app: &str,
    label: &str,
) -> Result<Option<(String, String)>> {
    let found = eb
        .describe_application_versions()
        .application_name(app)
        .version_labels(label)
        .send()
        .await
        .map_err(|e| anyhow!("Reading version '{label}' failed: {}", sdk_error_text(&e)))?;
    Ok(found
        .application_versions()
        .iter()
        .find(|v| v.version_label() == Some(label))
        .map(|v| {
            let b = v.source_bundle();
            (
                b.and_then(|b| b.s3_bucket()).unwrap_or("").to_string(),
                b.and_then(|b| b.s3_key()).unwrap_or("").to_string(),
            )
        }))
}

/// Fails naming `versionLabel` when the application already has the
/// version, before anything is uploaded.
pub async fn check_label_free(
    eb: &aws_sdk_elasticbeanstalk::Client,
    app: &str,
    label: &str,
) -> Result<()> {
    if existing_version(eb, app, label).await?.is_some() {
        bail!(
            "Input 'versionLabel': application '{app}' already has a version '{label}'; give a new label, or leave it empty for one made from the time."
        );
    }
    Ok(())
}

/// Creates application version `label` from the bundle in S3. When the
/// request was retried after its answer was lost, Beanstalk says the
/// version exists: it is ours when it has this bundle.
pub async fn create_version(
    task: &Task,
    eb: &aws_sdk_elasticbeanstalk::Client,
    app: &str,
    label: &str,
    (bucket, key): (&str, &str),
    description: Option<&str>,
) -> Result<()> {
    let created = eb
        .create_application_version()
        .application_name(app)
        .version_label(label)
        .source_bundle(S3Location::builder().s3_bucket(bucket).s3_key(key).build())
        .set_description(description.map(str::to_string))
        .send()
        .await;
    if let Err(e) = created {
        let text = sdk_error_text(&e);
        let ours = text.contains("already exists")
            && existing_version(eb, app, label).await?
                == Some((bucket.to_string(), key.to_string()));
        if !ours {
            bail!("Creating version '{label}' of application '{app}' failed: {text}");
        }
    }
    task.console.info(&format!(
        "Created version {label} of application {app} from s3://{bucket}/{key}{}",
        description.map(|d| format!(" ({d})")).unwrap_or_default()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_labels_are_the_originals() {
        assert_eq!(
            bundle_key("web/prod", Path::new("/t/ebDeploymentBundle.zip"), "v1"),
            "web/prod/ebDeploymentBundle-v1.zip"
        );
        assert_eq!(
            bundle_key("web", Path::new("/t/site.pkg"), "build-7"),
            "web/site.pkg-build-7.zip"
        );
        assert_eq!(version_label(Some("r42".into())), "r42");
        let made = version_label(None);
        assert!(
            made.starts_with('v') && made[1..].parse::<u128>().is_ok(),
            "{made}"
        );
    }

    #[test]
    fn windows_bundles_carry_the_manifest_and_the_app_folder() {
        let dir = std::env::temp_dir().join(format!("eb-win-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("publish/wwwroot")).unwrap();
        std::fs::write(dir.join("publish/web.dll"), b"dll").unwrap();
        std::fs::write(dir.join("publish/wwwroot/site.css"), b"css").unwrap();
        let temp = dir.join("temp");
        std::fs::create_dir_all(&temp).unwrap();
        let (zip, made) = local_archive(&Bundle::CoreWindows(dir.join("publish")), &temp)
            .unwrap()
            .unwrap();
        assert!(made);
        let bytes = std::fs::read(&zip).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for name in [
            "app/web.dll",
            "app/wwwroot/site.css",
            "aws-windows-deployment-manifest.json",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(!temp.join("aws-windows-deployment-manifest.json").exists());
        let manifest: serde_json::Value = serde_json::from_str(&windows_manifest("/app/")).unwrap();
        assert_eq!(
            manifest["deployments"]["aspNetCoreWeb"][0]["parameters"]["appBundle"],
            "/app/"
        );
        // The same files, the same bytes.
        let again = local_archive(&Bundle::CoreWindows(dir.join("publish")), &temp)
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(again.0).unwrap(), bytes);
    }
}
