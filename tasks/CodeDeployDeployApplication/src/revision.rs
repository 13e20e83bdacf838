//! The revision to deploy: an S3 object that exists, or a workspace folder
//! (zipped) or archive uploaded to the bucket first.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use aws_sdk_codedeploy::types::{BundleType, S3Location};
use aws_sdk_s3::types::ObjectCannedAcl;
use vsts_aws_common::sdk_error_text;
use vsts_s3::human_bytes;
use vsts_s3::transfer::{FileObject, Uploads};
use vsts_task::Task;

use crate::{Params, Source};

/// The revision in the bucket, pinned to the object's ETag and version
/// when they are known.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub key: String,
    pub bundle_type: BundleType,
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

impl Revision {
    pub fn location(&self, bucket: &str) -> S3Location {
        S3Location::builder()
            .bucket(bucket)
            .key(&self.key)
            .bundle_type(self.bundle_type.clone())
            // CodeDeploy compares the ETag without S3's quotes.
            .set_e_tag(self.e_tag.as_ref().map(|e| e.trim_matches('"').to_string()))
            .set_version(self.version.clone())
            .build()
    }
}

/// The bundle type CodeDeploy reads an archive as, from its name: `.zip`
/// (or no extension, as the original assumes), `.tar`, `.tgz`/`.tar.gz`,
/// and the AppSpec files of Lambda and ECS deployments, `.yaml`/`.yml`
/// and `.json`.
pub fn bundle_type(name: &str, input: &str) -> Result<BundleType> {
    let file = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_lowercase();
    let t = if file.ends_with(".tar.gz") || file.ends_with(".tgz") {
        BundleType::TarGZip
    } else if file.ends_with(".tar") {
        BundleType::Tar
    } else if file.ends_with(".zip") || !file.contains('.') {
        BundleType::Zip
    } else if file.ends_with(".yaml") || file.ends_with(".yml") {
        BundleType::Yaml
    } else if file.ends_with(".json") {
        BundleType::Json
    } else {
        bail!(
            "Input '{input}': '{name}' is not an archive CodeDeploy deploys: allowed are .zip, .tar, .tgz or .tar.gz, and .yaml, .yml or .json AppSpec files (a name without extension is taken as zip)."
        );
    };
    Ok(t)
}

/// A zip the task made, removed when dropped (uploaded or not).
struct Temporary(PathBuf);

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn prepare(
    task: &Task,
    s3: &aws_sdk_s3::Client,
    p: &Params,
    uploads: &Uploads,
) -> Result<Revision> {
    let console = &task.console;
    let (path, prefix, acl) = match &p.source {
        Source::S3 { key } => {
            let head = s3
                .head_object()
                .bucket(&p.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "Input 'bundleKey': the revision s3://{}/{key} was not found: {}",
                        p.bucket,
                        sdk_error_text(&e)
                    )
                })?;
            return Ok(Revision {
                key: key.clone(),
                bundle_type: bundle_type(key, "bundleKey")?,
                e_tag: head.e_tag().map(str::to_string),
                version: head.version_id().map(str::to_string),
            });
        }
        Source::Workspace { path, prefix, acl } => (path, prefix, acl),
    };
    let mut _temporary = None;
    let (archive, bundle) = if path.is_dir() {
        // The original's name: the application and the time in ms.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let archive = task
            .temp_dir()
            .join(format!("{}.v{millis}.zip", p.application));
        _temporary = Some(Temporary(archive.clone()));
        console.info(&format!(
            "Zipping {} into {}",
            path.display(),
            archive.display()
        ));
        let (src, dest) = (path.clone(), archive.clone());
        let size = tokio::task::spawn_blocking(move || {
            vsts_bundle::zip_folder_to_file(&src, "revisionBundle", &dest)
        })
        .await??;
        console.info(&format!(
            "Archive {} ({})",
            archive.display(),
            human_bytes(size)
        ));
        (archive, BundleType::Zip)
    } else {
        let bundle = bundle_type(&path.to_string_lossy(), "revisionBundle")?;
        (path.clone(), bundle)
    };
    let key = vsts_s3::join_key(prefix, &file_name(&archive));
    let size = std::fs::metadata(&archive)
        .map_err(|e| anyhow!("{}: {e}", archive.display()))?
        .len();
    let file = FileObject {
        path: archive,
        size,
        bucket: p.bucket.clone(),
        key: key.clone(),
    };
    let uploaded = vsts_s3::transfer::upload_file(
        console,
        s3,
        uploads,
        &file,
        acl.as_deref().map(ObjectCannedAcl::from),
    )
    .await?;
    console.info("Revision uploaded.");
    Ok(Revision {
        key,
        bundle_type: bundle,
        e_tag: uploaded.e_tag,
        version: uploaded.version,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_types_follow_the_name() {
        let t = |n: &str| bundle_type(n, "bundleKey").unwrap();
        assert_eq!(t("app.zip"), BundleType::Zip);
        assert_eq!(t("builds/app"), BundleType::Zip);
        assert_eq!(t("app.TAR"), BundleType::Tar);
        assert_eq!(t("app.tar.gz"), BundleType::TarGZip);
        assert_eq!(t("C:\\out\\app.tgz"), BundleType::TarGZip);
        assert_eq!(t("appspec.yml"), BundleType::Yaml);
        assert_eq!(t("appspec.json"), BundleType::Json);
        let e = bundle_type("app.rar", "revisionBundle").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Input 'revisionBundle': 'app.rar'"),
            "{e}"
        );
    }

    #[test]
    fn the_etag_goes_without_quotes() {
        let r = Revision {
            key: "k.zip".into(),
            bundle_type: BundleType::Zip,
            e_tag: Some("\"abc-2\"".into()),
            version: Some("v1".into()),
        };
        let l = r.location("b");
        assert_eq!(l.e_tag(), Some("abc-2"));
        assert_eq!(l.version(), Some("v1"));
        assert_eq!(l.bundle_type(), Some(&BundleType::Zip));
    }
}
