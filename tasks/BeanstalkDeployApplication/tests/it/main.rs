//! BeanstalkDeployApplication. moto serves Beanstalk's applications and
//! environments but no versions, updates or events: the checks run against
//! moto, the deployments against the stub in `test_support::beanstalk` (the
//! service's query protocol and XML shapes, a scripted update), with the
//! bundles in moto's S3.

use std::path::{Path, PathBuf};

use test_support::beanstalk::{Beanstalk, Step};
use test_support::s3::keys;
use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bucket() -> String {
    test_support::s3::bucket("eb-storage")
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_beanstalkdeployapplication"))
}

fn folder(files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    test_support::s3::folder("publish", &files)
}

struct World {
    stub: Beanstalk,
    app: String,
    env: String,
}

fn world(script: Vec<Step>) -> World {
    let app = unique("web");
    let env = unique("prod");
    World {
        stub: Beanstalk::start(&bucket(), &app, &env, script),
        app,
        env,
    }
}

impl World {
    fn task(&self) -> TaskEnv {
        TaskEnv::moto()
            .set("AWS_ENDPOINT_URL", &self.stub.server.url)
            .input("applicationName", &self.app)
            .input("environmentName", &self.env)
            .input("eventPollingDelay", "1")
    }

    fn linux_folder(&self) -> TaskEnv {
        let dir = folder(&[("web.dll", "dll"), ("appsettings.json", "{}")]);
        self.task()
            .input("applicationType", "aspnetCoreLinux")
            .input("dotnetPublishPath", dir.to_str().unwrap())
    }
}

#[test]
fn a_new_version_is_deployed_with_its_events_until_ready() {
    let w = world(vec![
        Step::new("Updating", "Grey").event("INFO", "Environment update is starting."),
        Step::new("Updating", "Grey")
            .event("INFO", "Deploying new version to instance(s).")
            .event("WARN", "Instance deployment: a warning worth reading."),
        Step::new("Ready", "Green").event("INFO", "Environment update completed successfully."),
    ]);
    let run = w
        .linux_folder()
        .input("versionLabel", "build-7")
        .input("description", "build 7")
        .input("outputVariable", "deployed")
        .run(bin());
    run.assert_succeeded();
    let (bucket, key, description) = w.stub.version(&w.app, "build-7").unwrap();
    assert_eq!(
        key,
        format!("{}/{}/ebDeploymentBundle-build-7.zip", w.app, w.env)
    );
    assert_eq!(description, "build 7");
    assert_eq!(keys(&bucket), [key]);
    // The events from the update's start, oldest first, each once; not the
    // one from before it.
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("   INFO    ") || l.contains("   WARN    "))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit("   ").next().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Environment update is starting.",
            "Deploying new version to instance(s).",
            "Instance deployment: a warning worth reading.",
            "Environment update completed successfully."
        ],
        "{}",
        run.stdout
    );
    assert!(lines[0].starts_with("20"), "dated: {}", lines[0]);
    assert!(run.stdout.contains(&format!(
        "Environment {} is Ready with health Green, running version build-7",
        w.env
    )));
    assert_eq!(run.variable("deployed").as_deref(), Some("build-7"));
}

#[test]
fn a_failed_deployment_fails_with_its_error_events() {
    let w = world(vec![
        Step::new("Updating", "Grey")
            .event("ERROR", "[Instance: i-0abc] Command failed on instance. Return code: 1 Output: dotnet: not found.")
            .event("ERROR", "Failed to deploy application."),
        Step::new("Ready", "Red")
            .event("INFO", "Environment update completed successfully.")
            .running("initial"),
    ]);
    let run = w
        .linux_folder()
        .input("outputVariable", "deployed")
        .run(bin());
    run.assert_failed_with("Elastic Beanstalk reported \"Failed to deploy application.\"");
    let err = run.errors().join("\n");
    assert!(
        err.contains("the environment runs version 'initial'"),
        "{err}"
    );
    assert!(err.contains("its health is Red"), "{err}");
    assert!(
        run.errors()
            .iter()
            .any(|e| e.starts_with("[Instance: i-0abc] Command failed on instance.")),
        "{err}"
    );
    assert_eq!(run.variable("deployed"), None, "not set on failure");
}

#[test]
fn an_existing_version_is_checked_then_deployed_without_upload() {
    let w = world(vec![Step::new("Ready", "Green")]);
    w.stub.add_version(&w.app, "release-3");
    w.task()
        .input("applicationType", "version")
        .input("versionLabel", "release-3")
        .run(bin())
        .assert_succeeded();
    assert_eq!(w.stub.calls("CreateApplicationVersion"), 0);
    assert_eq!(w.stub.calls("CreateStorageLocation"), 0);
    assert!(keys(&w.stub.bucket).is_empty());

    let run = w
        .task()
        .input("applicationType", "version")
        .input("versionLabel", "release-9")
        .run(bin());
    run.assert_failed_with(&format!(
        "Input 'versionLabel': application '{}' has no version 'release-9'.",
        w.app
    ));
    assert_eq!(w.stub.calls("UpdateEnvironment"), 1, "only the first run");
    w.task()
        .input("applicationType", "version")
        .run(bin())
        .assert_failed_with("Input required: versionLabel (applicationType is 'version')");
}

#[test]
fn cancelling_the_step_aborts_the_environment_update() {
    let w = world(vec![Step::new("Updating", "Grey")]);
    let running = w
        .linux_folder()
        .spawn(bin())
        .after("the update started", || {
            w.stub.calls("UpdateEnvironment") > 0
        });
    running.cancel();
    let run = running.wait();
    run.assert_failed_with("was aborted (Elastic Beanstalk rolls it back)");
    assert!(w.stub.aborted());
}

#[test]
fn the_application_and_environment_are_checked_against_moto() {
    let eb = aws_sdk_elasticbeanstalk::Client::new(&sdk_config());
    let app = unique("moto-app");
    block_on(eb.create_application().application_name(&app).send()).unwrap();
    let dir = folder(&[("web.dll", "dll")]);
    let task = |app: &str, env: &str| {
        TaskEnv::moto()
            .input("applicationName", app)
            .input("environmentName", env)
            .input("applicationType", "aspnetCoreLinux")
            .input("dotnetPublishPath", dir.to_str().unwrap())
    };
    task("no-such-app", "prod")
        .run(bin())
        .assert_failed_with("Input 'applicationName': application 'no-such-app' was not found");
    task(&app, "no-such-env").run(bin()).assert_failed_with(&format!(
        "Input 'environmentName': environment 'no-such-env' of application '{app}' was not found"
    ));
    task(&app, "prod")
        .input("eventPollingDelay", "0")
        .run(bin())
        .assert_failed_with("eventPollingDelay");
}
