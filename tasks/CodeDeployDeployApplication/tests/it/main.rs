//! CodeDeployDeployApplication. Against moto: the checks, the upload and
//! the deployment as created, read back with GetDeployment and S3 (moto's
//! deployments never leave "Created", so those runs end at the timeout).
//! The states moto cannot produce (progress, success, failure with each
//! instance's lifecycle event and log tail, timeout, cancellation) come
//! from a stub CodeDeploy that answers in the service's JSON protocol with
//! the shapes of its API model; S3 requests go on to moto.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use test_support::s3::{keys, s3};
use test_support::{HttpServer, Response, TaskEnv, block_on, sdk_config, unique};

fn bucket() -> String {
    test_support::s3::bucket("stub")
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_codedeploydeployapplication"))
}

fn codedeploy() -> aws_sdk_codedeploy::Client {
    aws_sdk_codedeploy::Client::new(&sdk_config())
}

/// An application with a deployment group, and a bucket, in moto.
fn world() -> (String, String, String) {
    let app = unique("app");
    let group = unique("group");
    block_on(
        codedeploy()
            .create_application()
            .application_name(&app)
            .send(),
    )
    .unwrap();
    block_on(
        codedeploy()
            .create_deployment_group()
            .application_name(&app)
            .deployment_group_name(&group)
            .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
            .send(),
    )
    .unwrap();
    (app, group, test_support::s3::bucket("revisions"))
}

fn folder(files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    test_support::s3::folder("revision", &files)
}

fn deployments(app: &str, group: &str) -> Vec<String> {
    block_on(
        codedeploy()
            .list_deployments()
            .application_name(app)
            .deployment_group_name(group)
            .send(),
    )
    .map(|o| o.deployments().to_vec())
    .unwrap_or_default()
}

fn env(app: &str, group: &str, bucket: &str) -> TaskEnv {
    TaskEnv::moto()
        .input("applicationName", app)
        .input("deploymentGroupName", group)
        .input("bucketName", bucket)
        // moto's deployments stay "Created": end the wait after 3 s.
        .input("timeoutInMins", "0.05")
}

#[test]
fn a_folder_is_zipped_uploaded_and_deployed_as_asked() {
    let (app, group, bucket) = world();
    let dir = folder(&[
        ("appspec.yml", "version: 0.0\nos: linux\n"),
        ("scripts/start.sh", "#!/bin/sh\necho start\n"),
    ]);
    let run = env(&app, &group, &bucket)
        .input("deploymentRevisionSource", "workspace")
        .input("revisionBundle", dir.to_str().unwrap())
        .input("bundlePrefix", "releases/web")
        .input("description", "build 42")
        .input("fileExistsBehavior", "OVERWRITE")
        .input("updateOutdatedInstancesOnly", "true")
        .input("ignoreApplicationStopFailures", "true")
        .input("outputVariable", "deploymentId")
        .run(bin());
    run.assert_failed_with("did not finish within 3 s (it was Created)");

    // The archive: under the prefix, named as the original names it, with
    // the folder's files.
    let uploaded = keys(&bucket);
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    let key = &uploaded[0];
    let name = key.strip_prefix("releases/web/").unwrap();
    assert!(
        name.starts_with(&format!("{app}.v")) && name.ends_with(".zip"),
        "{key}"
    );
    let (etag, bytes) = block_on(async {
        let o = s3()
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let etag = o.e_tag().unwrap().trim_matches('"').to_string();
        (etag, o.body.collect().await.unwrap().into_bytes())
    });
    let mut zip = zip_names(&bytes);
    zip.sort();
    assert_eq!(zip, ["appspec.yml", "scripts/start.sh"]);

    // The deployment as created.
    let ids = deployments(&app, &group);
    assert_eq!(ids.len(), 1);
    assert_eq!(
        run.variable("deploymentId").as_deref(),
        Some(ids[0].as_str())
    );
    let info = block_on(codedeploy().get_deployment().deployment_id(&ids[0]).send())
        .unwrap()
        .deployment_info
        .unwrap();
    let location = info.revision().unwrap().s3_location().unwrap();
    assert_eq!(location.bucket(), Some(bucket.as_str()));
    assert_eq!(location.key(), Some(key.as_str()));
    assert_eq!(location.bundle_type().map(|b| b.as_str()), Some("zip"));
    assert_eq!(
        location.e_tag(),
        Some(etag.as_str()),
        "pinned to the upload"
    );
    assert_eq!(info.description(), Some("build 42"));
    assert_eq!(
        info.file_exists_behavior().map(|b| b.as_str()),
        Some("OVERWRITE")
    );
    assert!(info.ignore_application_stop_failures());
    assert!(info.update_outdated_instances_only());
    // The temporary archive is gone.
    let temp = std::env::temp_dir().join(name);
    assert!(!temp.exists(), "{} left behind", temp.display());
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    // The central directory's names, without a zip reader: each central
    // header is "PK\x01\x02", its name length at 28 and name at 46.
    let mut names = Vec::new();
    let mut i = 0;
    while i + 46 <= bytes.len() {
        if bytes[i..i + 4] == *b"PK\x01\x02" {
            let n = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
            names.push(String::from_utf8_lossy(&bytes[i + 46..i + 46 + n]).into_owned());
            i += 46 + n;
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn a_revision_in_s3_is_checked_and_pinned() {
    let (app, group, bucket) = world();
    let put = block_on(
        s3().put_object()
            .bucket(&bucket)
            .key("builds/web-42.tar.gz")
            .body(b"not really a tarball".to_vec().into())
            .send(),
    )
    .unwrap();
    let run = env(&app, &group, &bucket)
        .input("deploymentRevisionSource", "s3")
        .input("bundleKey", "builds/web-42.tar.gz")
        .run(bin());
    run.assert_failed_with("did not finish within");
    let ids = deployments(&app, &group);
    assert_eq!(ids.len(), 1);
    let info = block_on(codedeploy().get_deployment().deployment_id(&ids[0]).send())
        .unwrap()
        .deployment_info
        .unwrap();
    let location = info.revision().unwrap().s3_location().unwrap();
    assert_eq!(location.key(), Some("builds/web-42.tar.gz"));
    assert_eq!(location.bundle_type().map(|b| b.as_str()), Some("tgz"));
    assert_eq!(location.e_tag(), put.e_tag().map(|e| e.trim_matches('"')));
    assert_eq!(
        info.file_exists_behavior().map(|b| b.as_str()),
        Some("DISALLOW"),
        "the original's default"
    );

    // A missing object is named, and nothing is deployed.
    let run = env(&app, &group, &bucket)
        .input("deploymentRevisionSource", "s3")
        .input("bundleKey", "builds/missing.zip")
        .run(bin());
    run.assert_failed_with(&format!(
        "Input 'bundleKey': the revision s3://{bucket}/builds/missing.zip was not found"
    ));
    assert_eq!(deployments(&app, &group).len(), 1);
}

#[test]
fn bad_inputs_and_missing_resources_are_named_before_anything_is_uploaded() {
    let (app, group, bucket) = world();
    let dir = folder(&[("appspec.yml", "version: 0.0\n")]);
    let rar = dir.join("app.rar");
    std::fs::write(&rar, b"x").unwrap();
    let workspace = |app: &str, group: &str| {
        env(app, group, &bucket)
            .input("deploymentRevisionSource", "workspace")
            .input("revisionBundle", dir.to_str().unwrap())
    };
    let cases: Vec<(TaskEnv, String)> = vec![
        (
            workspace("no-such-app", &group),
            "Input 'applicationName': application 'no-such-app' was not found".into(),
        ),
        (
            workspace(&app, "no-such-group"),
            format!(
                "Input 'deploymentGroupName': deployment group 'no-such-group' of application '{app}' was not found"
            ),
        ),
        (
            workspace(&app, &group).input("timeoutInMins", "0"),
            "Input 'timeoutInMins': '0' is not a number of minutes".into(),
        ),
        (
            workspace(&app, &group).input("fileExistsBehavior", "MERGE"),
            "fileExistsBehavior".into(),
        ),
        (
            workspace(&app, &group).input("revisionBundle", rar.to_str().unwrap()),
            // The path as the task sees it (Z:\... under Wine).
            format!(
                "Input 'revisionBundle': '{}' is not an archive CodeDeploy deploys",
                test_support::platform::task_path(&rar)
            ),
        ),
        (
            workspace(&app, &group).input("revisionBundle", dir.join("missing").to_str().unwrap()),
            "Input 'revisionBundle':".into(),
        ),
        (
            env(&app, &group, &bucket).input("deploymentRevisionSource", "s3"),
            "Input required: bundleKey".into(),
        ),
    ];
    for (env, needle) in cases {
        env.run(bin()).assert_failed_with(&needle);
    }
    assert!(keys(&bucket).is_empty(), "nothing uploaded");
    assert!(deployments(&app, &group).is_empty(), "nothing deployed");
}

/// A stub CodeDeploy in the JSON protocol: GetDeployment walks through
/// `states` (the last repeats), ListDeploymentTargets/BatchGet answer
/// `targets` for the same poll, StopDeployment is recorded (and turns the
/// deployment Stopped); S3 requests are forwarded to moto.
struct Stub {
    server: HttpServer,
    stop_bodies: Arc<Mutex<Vec<Value>>>,
}

const ID: &str = "d-STUB12345";

impl Stub {
    /// `states[n]`: (status, overview, errorInformation); `targets[n]`: the
    /// targets' JSON at that poll.
    fn start(states: Vec<(&'static str, [i64; 6], Value)>, targets: Vec<Value>) -> Self {
        Self::start_with(states, targets, false)
    }

    /// With `lose_first_create`, the first CreateDeployment is taken but
    /// its answer lost (the connection dropped), and the SDK's retry meets
    /// the group's active deployment, as CodeDeploy answers it.
    fn start_with(
        states: Vec<(&'static str, [i64; 6], Value)>,
        targets: Vec<Value>,
        lose_first_create: bool,
    ) -> Self {
        let moto = test_support::moto();
        let created: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let stop_bodies = Arc::new(Mutex::new(Vec::new()));
        let stops = stop_bodies.clone();
        let server = HttpServer::start(move |req| {
            let Some(op) = req
                .header("x-amz-target")
                .and_then(|t| t.strip_prefix("CodeDeploy_20141006."))
            else {
                return test_support::forward_to(&moto, req);
            };
            let at = polls.load(Ordering::SeqCst).saturating_sub(1);
            let stopped = !stops.lock().unwrap().is_empty();
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
            let answer = match op {
                "GetApplication" => {
                    json!({"application": {"applicationName": body["applicationName"]}})
                }
                "GetDeploymentGroup" => {
                    json!({"deploymentGroupInfo": {"applicationName": body["applicationName"], "deploymentGroupName": body["deploymentGroupName"]}})
                }
                "CreateDeployment" => {
                    let mut first = created.lock().unwrap();
                    if first.is_some() && lose_first_create {
                        return Response::new(
                            400,
                            r#"{"__type":"DeploymentLimitExceededException","message":"The Deployment Group 'production' already has an active Deployment."}"#,
                        )
                        .header("Content-Type", "application/x-amz-json-1.1");
                    }
                    *first = Some(body["revision"].clone());
                    if lose_first_create {
                        return Response::drop_connection();
                    }
                    json!({"deploymentId": ID})
                }
                "ListDeployments" => json!({"deployments": [ID]}),
                "GetDeployment" => {
                    let n = polls.fetch_add(1, Ordering::SeqCst);
                    let (status, o, error) = if stopped {
                        (
                            "Stopped",
                            [0, 0, 0, 0, 0, 0],
                            json!({"code": "MANUAL_STOP", "message": "stopped"}),
                        )
                    } else {
                        states[n.min(states.len() - 1)].clone()
                    };
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    json!({"deploymentInfo": {
                        "deploymentId": ID,
                        "revision": created.lock().unwrap().clone().unwrap_or(json!({})),
                        "createTime": now,
                        "status": status,
                        "deploymentOverview": {"Pending": o[0], "InProgress": o[1], "Succeeded": o[2], "Failed": o[3], "Skipped": o[4], "Ready": o[5]},
                        "errorInformation": error
                    }})
                }
                "ListDeploymentTargets" => {
                    let all = targets[at.min(targets.len() - 1)]
                        .as_array()
                        .unwrap()
                        .clone();
                    let wanted = body["targetFilters"]["TargetStatus"][0].as_str();
                    let ids: Vec<Value> = all
                        .iter()
                        .filter(|t| wanted.is_none_or(|w| t["instanceTarget"]["status"] == w))
                        .map(|t| t["instanceTarget"]["targetId"].clone())
                        .collect();
                    json!({"targetIds": ids})
                }
                "BatchGetDeploymentTargets" => {
                    let all = targets[at.min(targets.len() - 1)]
                        .as_array()
                        .unwrap()
                        .clone();
                    let ids = body["targetIds"].as_array().cloned().unwrap_or_default();
                    let chosen: Vec<Value> = all
                        .into_iter()
                        .filter(|t| ids.contains(&t["instanceTarget"]["targetId"]))
                        .collect();
                    json!({"deploymentTargets": chosen})
                }
                "StopDeployment" => {
                    stops.lock().unwrap().push(body);
                    json!({"status": "Pending", "statusMessage": "Stopping"})
                }
                other => {
                    return Response::new(
                        400,
                        format!(r#"{{"__type":"UnknownOperationException","message":"{other}"}}"#),
                    )
                    .header("Content-Type", "application/x-amz-json-1.1");
                }
            };
            Response::new(200, answer.to_string())
                .header("Content-Type", "application/x-amz-json-1.1")
        });
        Stub {
            server,
            stop_bodies,
        }
    }

    fn env(&self, bucket: &str) -> TaskEnv {
        TaskEnv::moto()
            .set("AWS_ENDPOINT_URL", &self.server.url)
            .input("applicationName", "web")
            .input("deploymentGroupName", "production")
            .input("bucketName", bucket)
            .input("deploymentRevisionSource", "workspace")
            .input(
                "revisionBundle",
                folder(&[("appspec.yml", "version: 0.0\n")])
                    .to_str()
                    .unwrap(),
            )
    }

    fn calls(&self, op: &str) -> usize {
        let target = format!("CodeDeploy_20141006.{op}");
        self.server
            .requests()
            .iter()
            .filter(|r| r.header("x-amz-target") == Some(target.as_str()))
            .count()
    }
}

fn instance(id: &str, status: &str, events: &[(&str, &str)]) -> Value {
    json!({
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": ID,
            "targetId": id,
            "status": status,
            "lifecycleEvents": events.iter().map(|(name, status)| json!({"lifecycleEventName": name, "status": status})).collect::<Vec<_>>()
        }
    })
}

#[test]
fn progress_is_shown_until_the_deployment_succeeds() {
    let stub = Stub::start(
        vec![
            ("Created", [2, 0, 0, 0, 0, 0], json!({})),
            ("InProgress", [0, 2, 0, 0, 0, 0], json!({})),
            ("Succeeded", [0, 0, 1, 0, 1, 0], json!({})),
        ],
        vec![
            json!([instance(
                "i-0aaa",
                "Pending",
                &[("BeforeInstall", "Pending")]
            )]),
            json!([
                instance(
                    "i-0aaa",
                    "InProgress",
                    &[("BeforeInstall", "Succeeded"), ("Install", "InProgress")]
                ),
                instance("i-0bbb", "Skipped", &[]),
            ]),
            json!([
                instance(
                    "i-0aaa",
                    "Succeeded",
                    &[
                        ("BeforeInstall", "Succeeded"),
                        ("Install", "Succeeded"),
                        ("ApplicationStart", "Succeeded")
                    ]
                ),
                instance("i-0bbb", "Skipped", &[]),
            ]),
        ],
    );
    let bucket = bucket();
    let run = stub
        .env(&bucket)
        .input("outputVariable", "deployId")
        .run(bin());
    run.assert_succeeded();
    for line in [
        format!(
            "Deployment {ID}: Created (pending 2, in progress 0, succeeded 0, failed 0, skipped 0, ready 0)"
        ),
        format!("Deployment {ID}: InProgress (pending 0, in progress 2"),
        "  i-0aaa  BeforeInstall: Succeeded".to_string(),
        "  i-0aaa  Install: InProgress".to_string(),
        "  i-0aaa  Install: Succeeded".to_string(),
        "  i-0aaa  ApplicationStart: Succeeded".to_string(),
        format!("Deployment {ID} of web to production succeeded: 1 target(s) succeeded, 1 skipped"),
    ] {
        assert!(
            run.stdout.contains(&line),
            "missing {line:?} in\n{}",
            run.stdout
        );
    }
    // Each event once, not at every poll.
    assert_eq!(
        run.stdout
            .matches("i-0aaa  BeforeInstall: Succeeded")
            .count(),
        1
    );
    assert_eq!(run.variable("deployId").as_deref(), Some(ID));
    assert_eq!(stub.calls("StopDeployment"), 0);
    assert_eq!(keys(&bucket).len(), 1, "the revision went to moto's S3");
}

#[test]
fn a_failure_names_the_instance_its_lifecycle_event_and_log_tail() {
    let failed = json!({
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": ID,
            "targetId": "i-0bbb",
            "status": "Failed",
            "lifecycleEvents": [
                {"lifecycleEventName": "BeforeInstall", "status": "Succeeded"},
                {"lifecycleEventName": "ApplicationStart", "status": "Failed", "diagnostics": {
                    "errorCode": "ScriptFailed",
                    "scriptName": "scripts/start.sh",
                    "message": "Script at specified location: scripts/start.sh run as user root failed with exit code 1",
                    "logTail": "[stdout]starting web\n[stderr]bind: address already in use\n"
                }},
                {"lifecycleEventName": "ValidateService", "status": "Skipped"}
            ]
        }
    });
    let stub = Stub::start(
        vec![
            ("InProgress", [0, 2, 0, 0, 0, 0], json!({})),
            (
                "Failed",
                [0, 0, 1, 1, 0, 0],
                json!({"code": "HEALTH_CONSTRAINTS", "message": "The overall deployment failed because too many individual instances failed deployment."}),
            ),
        ],
        vec![
            json!([
                instance("i-0aaa", "InProgress", &[]),
                instance("i-0bbb", "InProgress", &[])
            ]),
            json!([
                instance("i-0aaa", "Succeeded", &[("ApplicationStart", "Succeeded")]),
                failed
            ]),
        ],
    );
    let run = stub.env(&bucket()).run(bin());
    run.assert_failed_with(&format!(
        "Deployment {ID} failed: HEALTH_CONSTRAINTS: The overall deployment failed because too many individual instances failed deployment."
    ));
    let errors = run.errors();
    assert!(
        errors.iter().any(|e| e == "i-0bbb failed at ApplicationStart: ScriptFailed in scripts/start.sh: Script at specified location: scripts/start.sh run as user root failed with exit code 1"),
        "{errors:?}"
    );
    assert!(!errors.iter().any(|e| e.contains("i-0aaa")), "{errors:?}");
    assert!(
        run.stdout
            .contains("##[group]Log tail of i-0bbb at ApplicationStart")
    );
    assert!(run.stdout.contains("[stderr]bind: address already in use"));
    assert_eq!(
        stub.calls("StopDeployment"),
        0,
        "a failed deployment is over"
    );
}

#[test]
fn a_timeout_stops_the_deployment_and_rolls_back() {
    let stub = Stub::start(
        vec![("InProgress", [0, 1, 0, 0, 0, 0], json!({}))],
        vec![json!([instance(
            "i-0aaa",
            "InProgress",
            &[("Install", "InProgress")]
        )])],
    );
    let run = stub
        .env(&bucket())
        .input("timeoutInMins", "0.05")
        .run(bin());
    run.assert_failed_with(&format!(
        "Deployment {ID} did not finish within 3 s (it was InProgress); deployment {ID} stopped, its updated instances rolled back."
    ));
    let stops = stub.stop_bodies.lock().unwrap().clone();
    assert_eq!(
        stops,
        [json!({"deploymentId": ID, "autoRollbackEnabled": true})]
    );
}

#[test]
fn cancelling_the_step_stops_the_deployment() {
    let stub = Stub::start(
        vec![("InProgress", [0, 1, 0, 0, 0, 0], json!({}))],
        vec![json!([])],
    );
    let running = stub
        .env(&bucket())
        .spawn(bin())
        .after("the wait started", || stub.calls("GetDeployment") > 0);
    running.cancel();
    let run = running.wait();
    run.assert_failed_with(&format!("deployment {ID} stopped"));
    assert_eq!(stub.calls("StopDeployment"), 1);
}

#[test]
fn a_create_retried_after_a_lost_answer_follows_the_deployment_it_made() {
    let stub = Stub::start_with(
        vec![
            ("InProgress", [0, 1, 0, 0, 0, 0], json!({})),
            ("Succeeded", [0, 0, 1, 0, 0, 0], json!({})),
        ],
        vec![json!([])],
        true,
    );
    let run = stub
        .env(&bucket())
        .input("outputVariable", "deployId")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(stub.calls("CreateDeployment"), 2, "the SDK retried once");
    assert!(
        run.stdout.contains(&format!(
            "Deployment {ID} of this revision is already under way"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(run.variable("deployId").as_deref(), Some(ID));
}
