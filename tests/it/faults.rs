//! Every task under every network fault (`test_support::Fault`), injected
//! by a proxy between the task and moto:
//!
//! - transient: every distinct request meets the fault once (a
//!   trickle slows every answer); the task must succeed and its result,
//!   read back from moto or from the log, must be intact;
//! - persistent: every request meets the fault; the task must fail with an
//!   error that says what failed.
//!
//! The tasks run in process, each with a service connection whose
//! `endpointUrl` is its own proxy, and with short timeouts
//! (`aws.connectTimeout`, `aws.readTimeout`) so a request that is never
//! answered costs a second, not a minute.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_cloudformation::types::ChangeSetType;
use test_support::{
    Fault, FirstOfEach, REGION, TaskEnv, block_on, fault_proxy, sdk_config, unique,
};

use crate::{Subject, run_in_process, subjects};

/// Short enough that a request never answered costs seconds, long enough
/// that moto, busy with every task at once, answers within it.
const READ_TIMEOUT: &str = "2";

/// Runs at once: moto is one Python process.
const AT_ONCE: usize = 12;

/// A step that reaches AWS through `proxy` only.
fn through(proxy: &str) -> TaskEnv {
    TaskEnv::new()
        .input("awsCredentials", "faults")
        .set("ENDPOINT_URL_FAULTS", "https://aws.amazon.com/")
        .set("ENDPOINT_AUTH_PARAMETER_FAULTS_USERNAME", "testing")
        .set("ENDPOINT_AUTH_PARAMETER_FAULTS_PASSWORD", "testing")
        .set("ENDPOINT_DATA_FAULTS_ENDPOINTURL", proxy)
        .input("regionName", REGION)
        .variable("aws.connectTimeout", "2")
        .variable("aws.readTimeout", READ_TIMEOUT)
}

type Check = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// What a task is given, prepared in moto, and how to see that it did
/// its work (from moto, the disk, or its log).
struct Scenario {
    inputs: Vec<(&'static str, String)>,
    check: Check,
}

fn folder(files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("faults"));
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 3 KiB of text that differs per file, so a cut shows.
fn content(seed: &str) -> Vec<u8> {
    (0..100)
        .map(|i| format!("{seed} line {i:04} ........\n"))
        .collect::<String>()
        .into_bytes()
}

fn s3() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn cfn() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk_config())
}

fn ecr() -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&sdk_config())
}

fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config())
}

fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config())
}

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config())
}

fn lambda() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk_config())
}

fn bucket() -> String {
    let b = unique("faults").to_lowercase();
    block_on(s3().create_bucket().bucket(&b).send()).unwrap();
    b
}

fn stack_status(stack: &str) -> Option<String> {
    block_on(cfn().describe_stacks().stack_name(stack).send())
        .ok()
        .and_then(|o| o.stacks().first().cloned())
        .and_then(|s| s.stack_status().map(|s| s.as_str().to_string()))
}

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

const QUEUE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";

fn function_zip(text: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A function in moto (never run: moto echoes invocations).
fn function() -> String {
    let name = unique("faults");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let iam = aws_sdk_iam::Client::new(&sdk_config());
    let role = block_on(
        iam.create_role()
            .role_name(&name)
            .assume_role_policy_document(trust)
            .send(),
    )
    .unwrap()
    .role
    .unwrap()
    .arn;
    block_on(
        lambda()
            .create_function()
            .function_name(&name)
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .role(role)
            .handler("index.handler")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(function_zip("def handler(e, c):\n    return e\n").into())
                    .build(),
            )
            .send(),
    )
    .unwrap();
    name
}

/// A scenario with where its AWS requests go (through the fault proxy)
/// and what else its task's environment holds.
struct Routed {
    scenario: Scenario,
    upstream: String,
    env: Vec<(String, String)>,
}

fn routed(task: &str) -> Routed {
    use test_support::registry::{MOTO_PASSWORD, Podman, Registry, ecr_front};
    match task {
        // ECR's token through the faulty network, then a real registry and
        // podman (see test_support::registry); the check keeps them alive.
        "ECRPushImage" | "ECRPullImage" => {
            let registry = Registry::start();
            let podman = Podman::new(&registry);
            let front = ecr_front(&test_support::moto(), &registry, None);
            let repo = unique("faults").to_lowercase();
            let host = registry.host.clone();
            let image = format!("{host}/{repo}:v1");
            podman.image(&image, "faults");
            let inputs = if task == "ECRPushImage" {
                block_on(ecr().create_repository().repository_name(&repo).send()).unwrap();
                vec![
                    ("sourceImageName", format!("{host}/{repo}")),
                    ("sourceImageTag", "v1".into()),
                    ("repositoryName", repo.clone()),
                    ("pushTag", "pushed".into()),
                ]
            } else {
                podman.run(&[
                    "login",
                    "--username",
                    "AWS",
                    "--password",
                    MOTO_PASSWORD,
                    &host,
                ]);
                podman.run(&["push", &image]);
                podman.run(&["logout", &host]);
                podman.run(&["rmi", "-f", &image]);
                vec![("repository", repo.clone()), ("imageTag", "v1".into())]
            };
            let env = podman.env.clone();
            let upstream = front.url.clone();
            let push = task == "ECRPushImage";
            let check: Check = Box::new(move |_| {
                let _alive = &front;
                if push {
                    let tags = registry.tags(&repo);
                    expect(tags.contains(&"pushed".to_string()), || {
                        format!("tags in the registry: {tags:?}")
                    })
                } else {
                    expect(podman.has(&image), || format!("{image} not pulled"))
                }
            });
            Routed {
                scenario: Scenario { inputs, check },
                upstream,
                env,
            }
        }
        // CodeDeploy from a stub that deploys at once (moto's deployments
        // never end), S3 on to moto; the check keeps the stub alive.
        "CodeDeployDeployApplication" => {
            let moto = test_support::moto();
            let stub = test_support::HttpServer::start(move |req| {
                let Some(op) = req
                    .header("x-amz-target")
                    .and_then(|t| t.strip_prefix("CodeDeploy_20141006."))
                else {
                    return test_support::forward_to(&moto, req);
                };
                let body = match op {
                    "CreateDeployment" => r#"{"deploymentId":"d-FAULTS"}"#,
                    "GetDeployment" => {
                        r#"{"deploymentInfo":{"deploymentId":"d-FAULTS","status":"Succeeded","deploymentOverview":{"Succeeded":1}}}"#
                    }
                    "ListDeploymentTargets" => r#"{"targetIds":[]}"#,
                    _ => "{}",
                };
                test_support::Response::new(200, body)
                    .header("Content-Type", "application/x-amz-json-1.1")
            });
            let bucket = bucket();
            let dir = folder(&[("appspec.yml", b"version: 0.0\n")]);
            let upstream = stub.url.clone();
            let check_bucket = bucket.clone();
            let check: Check = Box::new(move |log| {
                let _alive = &stub;
                let uploaded = block_on(s3().list_objects_v2().bucket(&check_bucket).send())
                    .map(|o| o.contents().len())
                    .unwrap_or(0);
                let created = stub.requests().iter().any(|r| {
                    r.header("x-amz-target") == Some("CodeDeploy_20141006.CreateDeployment")
                });
                expect(
                    uploaded == 1 && created && log.contains("Deployment d-FAULTS of app"),
                    || format!("{uploaded} object(s) uploaded, deployment created: {created}"),
                )
            });
            Routed {
                scenario: Scenario {
                    inputs: vec![
                        ("applicationName", "app".into()),
                        ("deploymentGroupName", "group".into()),
                        ("bucketName", bucket),
                        ("revisionBundle", dir.display().to_string()),
                    ],
                    check,
                },
                upstream,
                env: Vec::new(),
            }
        }
        // Beanstalk from the stub in test_support::beanstalk (moto has no
        // versions, updates or events), S3 on to moto; the check keeps the
        // stub alive.
        "BeanstalkCreateApplicationVersion" | "BeanstalkDeployApplication" => {
            use test_support::beanstalk::{Beanstalk, Step};
            let app = unique("faults");
            let env = unique("faults-env");
            let stub = Beanstalk::start(
                &bucket(),
                &app,
                &env,
                vec![
                    Step::new("Updating", "Grey").event("INFO", "Deploying new version."),
                    Step::new("Ready", "Green"),
                ],
            );
            let dir = folder(&[("web.dll", b"dll")]);
            let mut inputs = vec![
                ("applicationName", app.clone()),
                ("applicationType", "aspnetCoreLinux".into()),
                ("dotnetPublishPath", dir.display().to_string()),
                ("versionLabel", "faults-1".into()),
            ];
            if task == "BeanstalkDeployApplication" {
                inputs.push(("environmentName", env.clone()));
                inputs.push(("eventPollingDelay", "1".into()));
            }
            let upstream = stub.server.url.clone();
            let deploy = task == "BeanstalkDeployApplication";
            let check: Check = Box::new(move |log| {
                let version = stub.version(&app, "faults-1");
                let uploaded = version.as_ref().is_some_and(|(bucket, key, _)| {
                    block_on(s3().head_object().bucket(bucket).key(key).send()).is_ok()
                });
                let deployed = !deploy || log.contains("running version faults-1");
                expect(uploaded && deployed, || {
                    format!("version: {version:?}, uploaded: {uploaded}, deployed: {deployed}")
                })
            });
            Routed {
                scenario: Scenario { inputs, check },
                upstream,
                env: Vec::new(),
            }
        }
        _ => Routed {
            scenario: scenario(task),
            upstream: test_support::moto(),
            env: Vec::new(),
        },
    }
}

fn scenario(task: &str) -> Scenario {
    match task {
        "CloudFormationCreateOrUpdateStack" => {
            let stack = unique("faults");
            let dir = folder(&[("template.yml", QUEUE.as_bytes())]);
            Scenario {
                inputs: vec![
                    ("stackName", stack.clone()),
                    ("templateSource", "file".into()),
                    (
                        "templateFile",
                        dir.join("template.yml").display().to_string(),
                    ),
                ],
                check: Box::new(move |_| {
                    let status = stack_status(&stack);
                    expect(status.as_deref() == Some("CREATE_COMPLETE"), || {
                        format!("stack {stack}: {status:?}")
                    })
                }),
            }
        }
        "CloudFormationDeleteStack" => {
            let stack = unique("faults");
            block_on(
                cfn()
                    .create_stack()
                    .stack_name(&stack)
                    .template_body(QUEUE)
                    .send(),
            )
            .unwrap();
            Scenario {
                inputs: vec![("stackName", stack.clone())],
                check: Box::new(move |_| {
                    let status = stack_status(&stack);
                    expect(
                        status.is_none() || status.as_deref() == Some("DELETE_COMPLETE"),
                        || format!("stack {stack}: {status:?}"),
                    )
                }),
            }
        }
        "CloudFormationExecuteChangeSet" => {
            let stack = unique("faults");
            // Unique names: moto finds a change set by name alone, across stacks.
            let set = unique("initial");
            block_on(
                cfn()
                    .create_change_set()
                    .stack_name(&stack)
                    .change_set_name(&set)
                    .change_set_type(ChangeSetType::Create)
                    .template_body(QUEUE)
                    .send(),
            )
            .unwrap();
            Scenario {
                inputs: vec![("stackName", stack.clone()), ("changeSetName", set)],
                check: Box::new(move |_| {
                    let status = stack_status(&stack);
                    expect(status.as_deref() == Some("CREATE_COMPLETE"), || {
                        format!("stack {stack}: {status:?}")
                    })
                }),
            }
        }
        "LambdaDeployFunction" => {
            let name = function();
            let code = "def handler(e, c):\n    return 'v2'\n";
            let zip = folder(&[]).join("code.zip");
            std::fs::write(&zip, function_zip(code)).unwrap();
            let before = block_on(
                lambda()
                    .get_function_configuration()
                    .function_name(&name)
                    .send(),
            )
            .unwrap()
            .code_sha256
            .unwrap_or_default();
            Scenario {
                inputs: vec![
                    ("deploymentMode", "codeonly".into()),
                    ("functionName", name.clone()),
                    ("codeLocation", "localfile".into()),
                    ("localZipFile", zip.display().to_string()),
                ],
                check: Box::new(move |_| {
                    let after = block_on(
                        lambda()
                            .get_function_configuration()
                            .function_name(&name)
                            .send(),
                    )
                    .map_err(|e| format!("{e:?}"))?
                    .code_sha256
                    .unwrap_or_default();
                    expect(after != before, || format!("{name}: code unchanged"))
                }),
            }
        }
        "LambdaInvokeFunction" => {
            let name = function();
            Scenario {
                inputs: vec![
                    ("functionName", name),
                    ("payload", r#"{"ping":"faults-1234"}"#.into()),
                    ("outputVariable", "result".into()),
                ],
                check: Box::new(|log| {
                    expect(
                        log.contains("##vso[task.setvariable variable=result")
                            && log.contains("faults-1234"),
                        || "the echoed payload is not in 'result'".into(),
                    )
                }),
            }
        }
        "S3Download" => {
            let b = bucket();
            let names = ["a.txt", "deep/b.txt", "deep/er/c.txt"];
            for n in names {
                block_on(
                    s3().put_object()
                        .bucket(&b)
                        .key(n)
                        .body(content(n).into())
                        .send(),
                )
                .unwrap();
            }
            let out = folder(&[]).join("out");
            Scenario {
                inputs: vec![
                    ("bucketName", b),
                    ("targetFolder", out.display().to_string()),
                ],
                check: Box::new(move |_| {
                    for n in names {
                        let got = std::fs::read(out.join(n)).unwrap_or_default();
                        expect(got == content(n), || format!("{n}: {} bytes", got.len()))?;
                    }
                    let left: Vec<_> = walk(&out)
                        .into_iter()
                        .filter(|p| !names.iter().any(|n| out.join(n) == *p))
                        .collect();
                    expect(left.is_empty(), || format!("left behind: {left:?}"))
                }),
            }
        }
        "S3Upload" => {
            let b = bucket();
            let names = ["a.txt", "deep/b.txt", "deep/er/c.txt"];
            let files: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (*n, content(n))).collect();
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
            let src = folder(&refs);
            let bucket = b.clone();
            Scenario {
                inputs: vec![
                    ("bucketName", b),
                    ("sourceFolder", src.display().to_string()),
                ],
                check: Box::new(move |_| {
                    for n in names {
                        let got = block_on(async {
                            let o = s3().get_object().bucket(&bucket).key(n).send().await.ok()?;
                            o.body.collect().await.ok().map(|b| b.to_vec())
                        });
                        expect(got.as_deref() == Some(&content(n)[..]), || {
                            format!("s3://{bucket}/{n}: {:?} bytes", got.map(|g| g.len()))
                        })?;
                    }
                    Ok(())
                }),
            }
        }
        "SecretsManagerCreateOrUpdateSecret" => {
            let name = unique("faults");
            let value = unique("value");
            Scenario {
                inputs: vec![
                    ("secretNameOrId", name.clone()),
                    ("secretValueSource", "inline".into()),
                    ("secretValue", value.clone()),
                    ("autoCreateSecret", "true".into()),
                ],
                check: Box::new(move |_| {
                    let got = block_on(secrets().get_secret_value().secret_id(&name).send())
                        .ok()
                        .and_then(|o| o.secret_string);
                    expect(got.as_deref() == Some(value.as_str()), || {
                        format!("{name}: {got:?}")
                    })
                }),
            }
        }
        "SecretsManagerGetSecret" => {
            let name = unique("faults");
            let value = unique("value");
            block_on(
                secrets()
                    .create_secret()
                    .name(&name)
                    .secret_string(&value)
                    .send(),
            )
            .unwrap();
            Scenario {
                inputs: vec![("secretIdOrName", name), ("variableName", "fetched".into())],
                check: Box::new(move |log| {
                    let line =
                        format!("##vso[task.setvariable variable=fetched;issecret=true;]{value}");
                    expect(log.contains(&line), || format!("no '{line}'"))
                }),
            }
        }
        "SystemsManagerGetParameter" => {
            let name = format!("/{}/setting", unique("faults"));
            let value = unique("value");
            block_on(
                ssm()
                    .put_parameter()
                    .name(&name)
                    .value(&value)
                    .r#type("String".into())
                    .send(),
            )
            .unwrap();
            Scenario {
                inputs: vec![
                    ("parameterName", name.clone()),
                    ("singleNameTransform", "custom".into()),
                    ("customVariableName", "setting".into()),
                ],
                check: Box::new(move |log| {
                    let set = log.lines().any(|l| {
                        l.starts_with("##vso[task.setvariable variable=setting;")
                            && l.ends_with(&format!("]{value}"))
                    });
                    expect(set, || format!("'setting' not set to {value}"))
                }),
            }
        }
        "SystemsManagerSetParameter" => {
            let name = format!("/{}/setting", unique("faults"));
            let value = unique("value");
            Scenario {
                inputs: vec![
                    ("parameterName", name.clone()),
                    ("parameterValue", value.clone()),
                ],
                check: Box::new(move |_| {
                    let got = block_on(ssm().get_parameter().name(&name).send())
                        .ok()
                        .and_then(|o| o.parameter)
                        .and_then(|p| p.value);
                    expect(got.as_deref() == Some(value.as_str()), || {
                        format!("{name}: {got:?}")
                    })
                }),
            }
        }
        // A send whose answer was lost is sent again: a standard queue may
        // then hold the message twice (SQS delivers at least once anyway);
        // what must hold is that it arrived, whole.
        "LambdaPublishLayerVersion" => {
            let layer = unique("faults");
            let dir = folder(&[("python/m.py", &content("layer"))]);
            Scenario {
                inputs: vec![
                    ("layerName", layer.clone()),
                    ("localFolder", dir.display().to_string()),
                ],
                check: Box::new(move |log| {
                    let versions =
                        block_on(lambda().list_layer_versions().layer_name(&layer).send())
                            .map(|o| o.layer_versions().len())
                            .unwrap_or(0);
                    let arn_set = log
                        .lines()
                        .any(|l| l.starts_with("##vso[task.setvariable variable=layerVersionArn;"));
                    expect(versions >= 1 && arn_set, || {
                        format!("{versions} version(s) of {layer}, layerVersionArn set: {arn_set}")
                    })
                }),
            }
        }
        "SendMessage" => {
            let url = block_on(sqs().create_queue().queue_name(unique("faults")).send())
                .unwrap()
                .queue_url
                .unwrap();
            let body = content("message");
            let text = String::from_utf8(body).unwrap();
            Scenario {
                inputs: vec![
                    ("messageTarget", "queue".into()),
                    ("queueUrl", url.clone()),
                    ("message", text.clone()),
                ],
                check: Box::new(move |log| {
                    let got = block_on(
                        sqs()
                            .receive_message()
                            .queue_url(&url)
                            .max_number_of_messages(10)
                            .send(),
                    )
                    .ok()
                    .and_then(|o| o.messages)
                    .unwrap_or_default();
                    let id_set = log
                        .lines()
                        .any(|l| l.starts_with("##vso[task.setvariable variable=messageId;"));
                    expect(
                        !got.is_empty()
                            && got.iter().all(|m| m.body() == Some(text.trim()))
                            && id_set,
                        || {
                            format!(
                                "{} message(s) in the queue, messageId set: {id_set}",
                                got.len()
                            )
                        },
                    )
                }),
            }
        }
        // The command id set in the variable is one moto knows, with the
        // document and parameters that were given.
        "SystemsManagerRunCommand" => {
            let comment = unique("faults");
            Scenario {
                inputs: vec![
                    ("documentName", "AWS-RunShellScript".into()),
                    ("documentParameters", r#"{"commands": ["uptime"]}"#.into()),
                    ("instanceIds", "i-0123456789abcdef0".into()),
                    ("comment", comment.clone()),
                    ("commandIdOutputVariable", "commandId".into()),
                ],
                check: Box::new(move |log| {
                    let id = log
                        .lines()
                        .find_map(|l| l.strip_prefix("##vso[task.setvariable variable=commandId;"))
                        .and_then(|l| l.split_once(']'))
                        .map(|(_, id)| id.to_string())
                        .unwrap_or_default();
                    let sent = block_on(ssm().list_commands().command_id(&id).send())
                        .ok()
                        .and_then(|o| o.commands)
                        .unwrap_or_default();
                    let ours = sent
                        .iter()
                        .filter(|c| c.comment() == Some(comment.as_str()));
                    expect(ours.count() == 1, || {
                        format!(
                            "commandId {id:?}: {} command(s) with the comment",
                            sent.len()
                        )
                    })
                }),
            }
        }
        "ConfigureAWSCredentials" => Scenario {
            inputs: vec![
                (
                    "roleToAssume",
                    "arn:aws:iam::123456789012:role/faults".into(),
                ),
                ("roleSessionName", "faults-session".into()),
            ],
            check: Box::new(|log| {
                let set = log.lines().any(|l| {
                    l.starts_with("##vso[task.setvariable variable=awsCallerArn;")
                        && l.ends_with(":assumed-role/faults/faults-session")
                });
                expect(set, || "awsCallerArn not set to the assumed role".into())
            }),
        },
        // The connection assumes a role (see `extra_env`), so the script's
        // credentials come through the faulty network.
        "AWSShellScript" => {
            let out = folder(&[]).join("seen.txt");
            Scenario {
                inputs: vec![
                    ("scriptType", "inline".into()),
                    (
                        "inlineScript",
                        format!(
                            "echo \"key=${{AWS_ACCESS_KEY_ID}} token=${{#AWS_SESSION_TOKEN}}\" > '{}'\n",
                            out.display()
                        ),
                    ),
                ],
                check: Box::new(move |_| {
                    let seen = std::fs::read_to_string(&out).unwrap_or_default();
                    expect(
                        seen.starts_with("key=ASIA") && !seen.contains("token=0"),
                        || format!("the script saw {seen:?}"),
                    )
                }),
            }
        }
        // The connection assumes a role (see `extra_env`); the CLI then
        // works offline (nothing to upload), writing its output template.
        "AWSCLI" => {
            let dir = folder(&[("t.yml", QUEUE.as_bytes())]);
            let out = dir.join("packaged.yml");
            Scenario {
                inputs: vec![
                    ("awsCommand", "cloudformation".into()),
                    ("awsSubCommand", "package".into()),
                    (
                        "awsArguments",
                        format!(
                            "--template-file \"{}\" --s3-bucket unused --output-template-file \"{}\"",
                            dir.join("t.yml").display(),
                            out.display()
                        ),
                    ),
                ],
                check: Box::new(move |_| {
                    let written = std::fs::read_to_string(&out).unwrap_or_default();
                    expect(written.contains("AWS::SQS::Queue"), || {
                        format!("the CLI wrote {written:?}")
                    })
                }),
            }
        }
        // The connection assumes a role (see `extra_env`); the stand-in
        // for PowerShell writes what it was given in its working folder.
        "AWSPowerShellModuleScript" => {
            let work = folder(&[]);
            let seen = work.join("pwsh-saw.txt");
            Scenario {
                inputs: vec![
                    ("scriptType", "inline".into()),
                    ("inlineScript", "Get-S3Bucket".into()),
                    ("workingDirectory", work.display().to_string()),
                ],
                check: Box::new(move |_| {
                    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
                    expect(
                        seen.starts_with("key=ASIA") && !seen.contains("token=0"),
                        || format!("PowerShell saw {seen:?}"),
                    )
                }),
            }
        }
        "LambdaNETCoreDeploy" => {
            let project = folder(&[("Orders.csproj", b"<Project/>")]);
            let seen = project.join("dotnet-saw.txt");
            Scenario {
                inputs: vec![
                    ("command", "deployFunction".into()),
                    ("lambdaProjectPath", project.display().to_string()),
                ],
                check: Box::new(move |_| {
                    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
                    expect(
                        seen.lines().count() >= 2
                            && seen
                                .lines()
                                .all(|l| l.starts_with("key=ASIA") && !l.contains("token=0")),
                        || format!("dotnet saw {seen:?}"),
                    )
                }),
            }
        }
        other => panic!("no fault scenario for {other}: add one"),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// What a task's connection adds in these tests: a task that makes no AWS
/// request of its own assumes a role, so that its credentials cross the
/// faulty network.
fn extra_env(task: &str, env: TaskEnv) -> TaskEnv {
    match task {
        "AWSShellScript" | "AWSCLI" => env.set(
            "ENDPOINT_AUTH_PARAMETER_FAULTS_ASSUMEROLEARN",
            "arn:aws:iam::123456789012:role/faults-script",
        ),
        "AWSPowerShellModuleScript" => env
            .set(
                "ENDPOINT_AUTH_PARAMETER_FAULTS_ASSUMEROLEARN",
                "arn:aws:iam::123456789012:role/faults-script",
            )
            .set("PWSH_STAND_IN_RECORD", "1"),
        "LambdaNETCoreDeploy" => env
            .set(
                "ENDPOINT_AUTH_PARAMETER_FAULTS_ASSUMEROLEARN",
                "arn:aws:iam::123456789012:role/faults-dotnet",
            )
            .set("DOTNET_STAND_IN_RECORD", "1"),
        _ => env,
    }
}

/// Runs `s` as the agent would: the given inputs, and every other input
/// at its task.json default.
fn run(s: &Subject, env: TaskEnv, inputs: &[(&'static str, String)]) -> crate::Outcome {
    let env = extra_env(s.name, env);
    let given = |name: &str| inputs.iter().any(|(k, _)| *k == name);
    let defaults = crate::input_defaults(s.name)
        .into_iter()
        .filter(|(name, _)| !given(name));
    let env = defaults.fold(env, |e, (k, v)| e.input(&k, &v));
    let env = inputs.iter().fold(env, |e, (k, v)| e.input(k, v));
    run_in_process(s, &env)
}

/// Runs `cases` on a few threads at once and returns what they report.
fn in_parallel<C: Send>(cases: Vec<C>, each: impl Fn(C) -> Option<String> + Sync) -> Vec<String> {
    let queue = std::sync::Mutex::new(cases);
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..AT_ONCE {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some(case) = next else { break };
                    if let Some(p) = each(case) {
                        problems.lock().unwrap().push(p);
                    }
                }
            });
        }
    });
    problems.into_inner().unwrap()
}

/// The subjects `FAULT_TASKS` (comma-separated task names) picks, or all.
fn chosen() -> Vec<Subject> {
    let only = std::env::var("FAULT_TASKS").unwrap_or_default();
    subjects()
        .into_iter()
        .filter(|s| only.is_empty() || only.split(',').any(|n| n.trim() == s.name))
        .collect()
}

/// Every task, every fault once per request: each run succeeds with an
/// intact result.
#[test]
fn every_task_survives_transient_faults() {
    let cases: Vec<(Subject, Fault)> = chosen()
        .into_iter()
        .flat_map(|s| Fault::ALL.map(|f| (s, f)))
        .collect();
    let problems = in_parallel(cases, |(s, fault)| {
        let Routed {
            scenario: sc,
            upstream,
            env,
        } = routed(s.name);
        let once = FirstOfEach::new();
        let picker = once.clone();
        let proxy = fault_proxy(&upstream, fault, move |req| {
            picker.pick(req) || fault == Fault::Trickle
        });
        let env = env
            .iter()
            .fold(through(&proxy.url), |e, (k, v)| e.set(k, v));
        let out = run(&s, env, &sc.inputs);
        let what = format!("{} under {fault:?}", s.name);
        let faulted = once.picked();
        match out.result {
            Err(panic) => Some(format!("{what}: panicked: {panic}")),
            Ok(Err(e)) => Some(format!("{what}: failed: {e:#}\n{}", out.log)),
            Ok(Ok(())) if faulted == 0 => Some(format!("{what}: no request was faulted")),
            Ok(Ok(())) => (sc.check)(&out.log)
                .err()
                .map(|e| format!("{what}: succeeded, but {e}\n{}", out.log)),
        }
    });
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Every task against a service that always fails or never answers:
/// a clear failure that names what happened.
#[test]
fn every_task_fails_clearly_under_persistent_faults() {
    // What the error must hold; a 500 to a HEAD request has no body, so
    // its status is all there is to show.
    let says = |fault| match fault {
        Fault::ServerError => vec!["injected server error".to_string(), "(HTTP 500".to_string()],
        _ => vec![format!(
            "no answer for {READ_TIMEOUT} s (read timeout; the pipeline variable aws.readTimeout sets it)"
        )],
    };
    let cases: Vec<(Subject, Fault)> = chosen()
        .into_iter()
        .flat_map(|s| [Fault::ServerError, Fault::Hang].map(|f| (s, f)))
        .collect();
    let problems = in_parallel(cases, |(s, fault)| {
        let Routed {
            scenario: sc,
            upstream,
            env,
        } = routed(s.name);
        let proxy = fault_proxy(&upstream, fault, |_| true);
        let env = env
            .iter()
            .fold(through(&proxy.url), |e, (k, v)| e.set(k, v))
            .set("AWS_MAX_ATTEMPTS", "2");
        let out = run(&s, env, &sc.inputs);
        let what = format!("{} under {fault:?}", s.name);
        let says = says(fault);
        match out.result {
            Err(panic) => Some(format!("{what}: panicked: {panic}")),
            Ok(Ok(())) => Some(format!("{what}: succeeded\n{}", out.log)),
            Ok(Err(e)) => {
                let text = format!("{e:#}");
                (!says.iter().any(|s| text.contains(s)))
                    .then(|| format!("{what}: the error says none of {says:?}: {text}"))
            }
        }
    });
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
