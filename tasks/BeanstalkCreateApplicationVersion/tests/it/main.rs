//! BeanstalkCreateApplicationVersion. moto serves Beanstalk's applications
//! but not its storage location or application versions: the application
//! check runs against moto, the rest against the stub in
//! `test_support::beanstalk` (the service's query protocol and XML shapes),
//! with the bundles in moto's S3, read back from there.

use std::io::Read;
use std::path::{Path, PathBuf};

use test_support::beanstalk::Beanstalk;
use test_support::s3::{object, s3};
use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bucket() -> String {
    test_support::s3::bucket("eb-storage")
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_beanstalkcreateapplicationversion"))
}

fn folder(files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    test_support::s3::folder("publish", &files)
}

/// The object's zip entries: name → content.
fn zip_entries(bucket: &str, key: &str) -> Vec<(String, String)> {
    let bytes = object(bucket, key);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            (f.name().unwrap().to_string(), text)
        })
        .collect()
}

fn stub() -> (Beanstalk, String) {
    let app = unique("web");
    (Beanstalk::start(&bucket(), &app, "unused-env", vec![]), app)
}

fn env(stub: &Beanstalk, app: &str) -> TaskEnv {
    TaskEnv::moto()
        .set("AWS_ENDPOINT_URL", &stub.server.url)
        .input("applicationName", app)
}

#[test]
fn a_linux_publish_folder_becomes_a_version() {
    let (stub, app) = stub();
    let dir = folder(&[("web.dll", "dll"), ("wwwroot/site.css", "css")]);
    let run = env(&stub, &app)
        .input("applicationType", "aspnetCoreLinux")
        .input("dotnetPublishPath", dir.to_str().unwrap())
        .input("description", "build 42")
        .input("outputVariable", "ebVersion")
        .run(bin());
    run.assert_succeeded();
    let label = run.variable("ebVersion").unwrap();
    assert!(
        label.starts_with('v') && label[1..].parse::<u128>().is_ok(),
        "the original's label: {label}"
    );
    let (bucket, key, description) = stub.version(&app, &label).unwrap();
    assert_eq!(bucket, stub.bucket);
    assert_eq!(key, format!("{app}/ebDeploymentBundle-{label}.zip"));
    assert_eq!(description, "build 42");
    let mut names: Vec<String> = zip_entries(&bucket, &key)
        .into_iter()
        .map(|e| e.0)
        .collect();
    names.sort();
    assert_eq!(names, ["web.dll", "wwwroot/site.css"]);
}

#[test]
fn a_windows_bundle_carries_the_app_folder_and_the_manifest() {
    let (stub, app) = stub();
    let dir = folder(&[("web.dll", "dll"), ("web.config", "<configuration/>")]);
    let run = env(&stub, &app)
        .input("applicationType", "aspnetCoreWindows")
        .input("dotnetPublishPath", dir.to_str().unwrap())
        .input("versionLabel", "r42")
        .run(bin());
    run.assert_succeeded();
    let (bucket, key, _) = stub.version(&app, "r42").unwrap();
    assert_eq!(key, format!("{app}/ebDeploymentBundle-r42.zip"));
    let entries = zip_entries(&bucket, &key);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "app/web.config",
            "app/web.dll",
            "aws-windows-deployment-manifest.json"
        ]
    );
    let manifest: serde_json::Value = serde_json::from_str(&entries[2].1).unwrap();
    let params = &manifest["deployments"]["aspNetCoreWeb"][0]["parameters"];
    assert_eq!(params["appBundle"], "/app/");
    assert_eq!(params["iisPath"], "/");
    assert_eq!(params["iisWebSite"], "Default Web Site");
}

#[test]
fn a_web_deploy_archive_or_an_s3_bundle_as_it_is() {
    let (stub, app) = stub();
    let dir = folder(&[("site.zip", "PK-not-really")]);
    env(&stub, &app)
        .input("applicationType", "aspnet")
        .input(
            "webDeploymentArchive",
            dir.join("site.zip").to_str().unwrap(),
        )
        .input("versionLabel", "wd1")
        .run(bin())
        .assert_succeeded();
    let (bucket, key, _) = stub.version(&app, "wd1").unwrap();
    assert_eq!(key, format!("{app}/site-wd1.zip"));
    assert_eq!(
        object(&bucket, &key),
        b"PK-not-really",
        "uploaded unchanged"
    );

    // An S3 bundle: checked, then referenced where it is.
    let own = bucket.clone();
    env(&stub, &app)
        .input("applicationType", "s3")
        .input("deploymentBundleBucket", &own)
        .input("deploymentBundleKey", &key)
        .input("versionLabel", "s3v")
        .run(bin())
        .assert_succeeded();
    assert_eq!(stub.version(&app, "s3v").unwrap().1, key);
    env(&stub, &app)
        .input("applicationType", "s3")
        .input("deploymentBundleBucket", &own)
        .input("deploymentBundleKey", "missing.zip")
        .input("versionLabel", "s3missing")
        .run(bin())
        .assert_failed_with(&format!(
            "Input 'deploymentBundleKey': s3://{own}/missing.zip was not found"
        ));
    assert!(stub.version(&app, "s3missing").is_none());

    // A label that exists is named before anything is uploaded.
    let before = block_on(s3().list_objects_v2().bucket(&own).send())
        .unwrap()
        .key_count();
    env(&stub, &app)
        .input("applicationType", "aspnet")
        .input(
            "webDeploymentArchive",
            dir.join("site.zip").to_str().unwrap(),
        )
        .input("versionLabel", "s3v")
        .run(bin())
        .assert_failed_with(&format!(
            "Input 'versionLabel': application '{app}' already has a version 's3v'"
        ));
    let after = block_on(s3().list_objects_v2().bucket(&own).send())
        .unwrap()
        .key_count();
    assert_eq!(before, after, "nothing uploaded");
}

#[test]
fn the_application_is_checked_against_moto_and_inputs_are_named() {
    // moto serves DescribeApplications: no stub here.
    let dir = folder(&[("web.dll", "dll")]);
    TaskEnv::moto()
        .input("applicationName", "no-such-app")
        .input("applicationType", "aspnetCoreLinux")
        .input("dotnetPublishPath", dir.to_str().unwrap())
        .run(bin())
        .assert_failed_with(
            "Input 'applicationName': application 'no-such-app' was not found in this region.",
        );
    let app = unique("moto-app");
    block_on(
        aws_sdk_elasticbeanstalk::Client::new(&sdk_config())
            .create_application()
            .application_name(&app)
            .send(),
    )
    .unwrap();
    let cases = [
        (
            TaskEnv::moto()
                .input("applicationName", &app)
                .input("applicationType", "docker"),
            "applicationType",
        ),
        (
            TaskEnv::moto()
                .input("applicationName", &app)
                .input("applicationType", "aspnet")
                .input("webDeploymentArchive", dir.to_str().unwrap()),
            "Input 'webDeploymentArchive':",
        ),
        (
            TaskEnv::moto()
                .input("applicationName", &app)
                .input("applicationType", "aspnetCoreWindows"),
            "Input required: dotnetPublishPath (applicationType is 'aspnetCoreWindows')",
        ),
        (
            TaskEnv::moto()
                .input("applicationName", &app)
                .input("applicationType", "s3")
                .input("deploymentBundleBucket", "b"),
            "Input required: deploymentBundleKey",
        ),
    ];
    for (env, needle) in cases {
        env.run(bin()).assert_failed_with(needle);
    }
}
