//! Tests across every task: hostile input values, network faults, and the
//! help of every task and input.

mod faults;
mod help;
mod hostile_inputs;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;

use test_support::{TaskEnv, unique};
use vsts_task::limits::Limit;
use vsts_task::{Console, Env, Task};

pub type RunFn = fn(Task) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

#[derive(Clone, Copy)]
pub struct Subject {
    /// The task's folder under tasks/ (and its task.json name).
    pub name: &'static str,
    pub limits: &'static [Limit],
    pub run: RunFn,
    /// Inputs that make the task get as far as its first AWS call, and fail
    /// there quickly (a missing function, stack, bucket, secret...).
    pub base: fn(&Path) -> Vec<(&'static str, String)>,
}

macro_rules! subject {
    ($name:literal, $krate:ident, $base:expr) => {
        Subject {
            name: $name,
            limits: $krate::INPUT_LIMITS,
            run: |t| Box::pin($krate::run(t)),
            base: $base,
        }
    };
}

pub fn subjects() -> Vec<Subject> {
    vec![
        subject!(
            "CloudFormationCreateOrUpdateStack",
            cloudformationcreateorupdatestack,
            |_| vec![
                ("stackName", unique("hostile")),
                ("templateSource", "usePrevious".into()),
            ]
        ),
        subject!(
            "CloudFormationDeleteStack",
            cloudformationdeletestack,
            |_| vec![("stackName", unique("hostile"))]
        ),
        subject!(
            "CloudFormationExecuteChangeSet",
            cloudformationexecutechangeset,
            |_| vec![
                ("changeSetName", unique("cs")),
                ("stackName", unique("hostile")),
            ]
        ),
        subject!(
            "BeanstalkCreateApplicationVersion",
            beanstalkcreateapplicationversion,
            |dir| vec![
                ("applicationName", unique("hostile")),
                ("applicationType", "aspnetCoreLinux".into()),
                ("dotnetPublishPath", dir.display().to_string()),
            ]
        ),
        subject!(
            "BeanstalkDeployApplication",
            beanstalkdeployapplication,
            |dir| vec![
                ("applicationName", unique("hostile")),
                ("environmentName", "prod".into()),
                ("applicationType", "aspnetCoreLinux".into()),
                ("dotnetPublishPath", dir.display().to_string()),
            ]
        ),
        subject!(
            "CodeDeployDeployApplication",
            codedeploydeployapplication,
            |dir| vec![
                ("applicationName", unique("hostile")),
                ("deploymentGroupName", "group".into()),
                ("bucketName", "no-such-bucket".into()),
                ("revisionBundle", dir.display().to_string()),
            ]
        ),
        subject!("LambdaDeployFunction", lambdadeployfunction, |_| vec![
            ("functionName", unique("hostile")),
            ("codeLocation", "s3object".into()),
            ("s3Bucket", "no-such-bucket".into()),
            ("s3ObjectKey", "code.zip".into()),
        ]),
        subject!(
            "LambdaPublishLayerVersion",
            lambdapublishlayerversion,
            |_| vec![
                ("layerName", unique("hostile")),
                ("codeLocation", "s3object".into()),
                ("s3Bucket", "no-such-bucket".into()),
                ("s3ObjectKey", "layer.zip".into()),
            ]
        ),
        // A stand-in dotnet (see `stand_ins`) reaches AWS with the
        // credentials it was handed, as the Lambda tools would.
        subject!("LambdaNETCoreDeploy", lambdanetcoredeploy, |dir| vec![
            ("command", "deployFunction".into()),
            ("lambdaProjectPath", dir.display().to_string()),
        ]),
        subject!("LambdaInvokeFunction", lambdainvokefunction, |_| vec![(
            "functionName",
            unique("hostile")
        )]),
        subject!("S3Download", s3download, |dir| vec![
            ("bucketName", unique("hostile").to_lowercase()),
            ("globExpressions", "**".into()),
            ("targetFolder", dir.join("out").display().to_string()),
        ]),
        subject!("S3Upload", s3upload, |dir| vec![
            ("bucketName", unique("hostile").to_lowercase()),
            ("sourceFolder", dir.display().to_string()),
            ("globExpressions", "**".into()),
        ]),
        // The task itself sends nothing with keys given directly: its script
        // reaches AWS with the credentials it was handed (curl signs the
        // request), so the runs can be told apart at the proxy.
        subject!("AWSShellScript", awsshellscript, |_| vec![
            ("scriptType", "inline".into()),
            (
                "inlineScript",
                "curl -s -o /dev/null --aws-sigv4 aws:amz:us-east-1:sts \\\n  \
                 --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" \\\n  \
                 -d 'Action=GetCallerIdentity&Version=2011-06-15' \"$AWS_ENDPOINT_URL/\"\n"
                    .into()
            ),
        ]),
        // The CLI, not the task, reaches AWS with the credentials it was
        // handed (AWS_ENDPOINT_URL, the recording proxy, reaches it from the
        // tests' environment).
        subject!("AWSCLI", awscli, |_| vec![
            ("awsCommand", "sts".into()),
            ("awsSubCommand", "get-caller-identity".into()),
        ]),
        // PowerShell cannot be installed here: a stand-in `pwsh` (see
        // `stand_ins`) does what a script calling Get-STSCallerIdentity
        // would, with the credentials it was handed.
        subject!(
            "AWSPowerShellModuleScript",
            awspowershellmodulescript,
            |_| vec![
                ("scriptType", "inline".into()),
                ("inlineScript", "Get-STSCallerIdentity".into()),
            ]
        ),
        subject!(
            "ConfigureAWSCredentials",
            configureawscredentials,
            |_| vec![(
                "roleToAssume",
                "arn:aws:iam::123456789012:role/hostile".into()
            ),]
        ),
        subject!(
            "SecretsManagerCreateOrUpdateSecret",
            secretsmanagercreateorupdatesecret,
            |_| vec![
                ("secretNameOrId", unique("hostile")),
                ("secretValueSource", "inline".into()),
                ("secretValue", "value".into()),
            ]
        ),
        subject!(
            "SecretsManagerGetSecret",
            secretsmanagergetsecret,
            |_| vec![
                ("secretIdOrName", unique("hostile")),
                ("variableName", "v".into()),
            ]
        ),
        subject!(
            "SystemsManagerGetParameter",
            systemsmanagergetparameter,
            |_| vec![("parameterName", format!("/{}/missing", unique("hostile")))]
        ),
        subject!("SendMessage", sendmessage, |_| vec![
            ("messageTarget", "queue".into()),
            (
                "queueUrl",
                format!(
                    "{}/123456789012/{}",
                    test_support::moto(),
                    unique("missing")
                )
            ),
            ("message", "hello".into()),
        ]),
        // The token is the first request; a local image that does not
        // exist ends the run there.
        subject!("ECRPushImage", ecrpushimage, |_| vec![
            ("sourceImageName", "localhost/hostile-none".into()),
            ("repositoryName", unique("hostile").to_lowercase()),
        ]),
        // The token is the first request; logging in to moto's registry
        // host (which does not resolve) ends the run there.
        subject!("ECRPullImage", ecrpullimage, |_| vec![(
            "repository",
            unique("hostile").to_lowercase()
        )]),
        subject!(
            "SystemsManagerRunCommand",
            systemsmanagerruncommand,
            |_| vec![
                ("documentName", "AWS-RunShellScript".into()),
                ("instanceIds", "i-0123456789abcdef0".into()),
            ]
        ),
        subject!(
            "SystemsManagerSetParameter",
            systemsmanagersetparameter,
            |_| vec![
                ("parameterName", format!("/{}/x", unique("hostile"))),
                ("parameterValue", "v".into()),
            ]
        ),
    ]
}

/// Every task folder has a subject: a new task cannot miss these tests.
#[test]
fn every_task_is_a_subject() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks");
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("task.json").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut names: Vec<String> = subjects().iter().map(|s| s.name.to_string()).collect();
    names.sort();
    assert_eq!(names, folders);
}

/// The inputs of a task.json: (name, whether the user types free text).
pub fn declared_inputs(task: &str) -> Vec<(String, bool)> {
    task_json(task)["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let kind = i["type"].as_str().unwrap();
            let editable = i["properties"]["EditableOptions"]
                .as_str()
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let free = matches!(kind, "string" | "multiLine" | "filePath" | "int")
                || (kind == "pickList" && editable)
                || kind.starts_with("connectedService");
            (i["name"].as_str().unwrap().to_string(), free)
        })
        .collect()
}

/// The inputs of a task.json that have a default: (name, default).
pub fn input_defaults(task: &str) -> Vec<(String, String)> {
    task_json(task)["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| {
            let default = i["defaultValue"].as_str().filter(|d| !d.is_empty())?;
            Some((i["name"].as_str()?.to_string(), default.to_string()))
        })
        .collect()
}

fn task_json(task: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks")
        .join(task)
        .join("task.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A folder with a stand-in `pwsh`, as PowerShell running a script that
/// calls AWS would: an STS GetCallerIdentity request signed with the
/// credentials in its environment (curl signs it), sent to
/// `AWS_ENDPOINT_URL`. With `PWSH_STAND_IN_RECORD` set it only writes the
/// key it was given, and whether it had a session token, to
/// `pwsh-saw.txt` in its working folder.
fn stand_ins() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(unique("stand-ins"));
        std::fs::create_dir_all(&dir).unwrap();
        let pwsh = dir.join("pwsh");
        std::fs::write(
            &pwsh,
            "#!/bin/sh\n\
             if [ -n \"$PWSH_STAND_IN_RECORD\" ]; then\n\
             \x20 echo \"key=$AWS_ACCESS_KEY_ID token=${#AWS_SESSION_TOKEN}\" > pwsh-saw.txt; exit 0\n\
             fi\n\
             exec curl -s -o /dev/null --aws-sigv4 \"aws:amz:$AWS_REGION:sts\" \\\n\
             \x20 --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" \\\n\
             \x20 -d 'Action=GetCallerIdentity&Version=2011-06-15' \"$AWS_ENDPOINT_URL/\"\n",
        )
        .unwrap();
        // The same for dotnet (LambdaNETCoreDeploy: tool install, restore,
        // then `dotnet lambda`, each reaching AWS with what it was handed).
        let dotnet = dir.join("dotnet");
        std::fs::write(
            &dotnet,
            "#!/bin/sh\n\
             if [ -n \"$DOTNET_STAND_IN_RECORD\" ]; then\n\
             \x20 echo \"key=$AWS_ACCESS_KEY_ID token=${#AWS_SESSION_TOKEN}\" >> dotnet-saw.txt; exit 0\n\
             fi\n\
             exec curl -s -o /dev/null --aws-sigv4 \"aws:amz:$AWS_REGION:sts\" \\\n\
             \x20 --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" \\\n\
             \x20 -d 'Action=GetCallerIdentity&Version=2011-06-15' \"$AWS_ENDPOINT_URL/\"\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [&pwsh, &dotnet] {
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        dir
    })
}

pub struct Outcome {
    pub result: Result<anyhow::Result<()>, String>,
    pub log: String,
}

pub fn run_in_process(s: &Subject, env: &TaskEnv) -> Outcome {
    let (console, log) = Console::capture(false);
    // The agent always gives a task its PATH (AWSShellScript finds bash on
    // it, AWSCLI the CLI `cargo xtask test` installed, and
    // AWSPowerShellModuleScript the stand-in for PowerShell).
    let mut pairs = env.0.clone();
    if !pairs.iter().any(|(k, _)| k == "PATH") {
        let mut path = format!(
            "{}:{}",
            stand_ins().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        if let Ok(cli) = std::env::var("AWS_CLI_DIR") {
            path = format!("{cli}:{path}");
        }
        pairs.push(("PATH".into(), path));
    }
    let task = Task::new(s.name, Env::from_pairs(pairs), console);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = s.run;
    let result =
        std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(run(task)))).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into())
        });
    drop(rt);
    Outcome {
        result,
        log: log.text(),
    }
}
