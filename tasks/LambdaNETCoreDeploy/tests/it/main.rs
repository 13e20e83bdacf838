//! LambdaNETCoreDeploy with a stand-in `dotnet`: the .NET SDK cannot be
//! installed here. The stand-in records each call (working folder,
//! arguments, the AWS variables and whether any agent secret reached it),
//! installs a stand-in `dotnet-lambda` into `~/.dotnet/tools` on
//! `dotnet tool install`, and writes the package a package-only run asks
//! for. What the real Amazon.Lambda.Tools do with those calls is not run
//! here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use test_support::{TaskEnv, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambdanetcoredeploy"))
}

/// Each call: `<program>|<cwd>|<args>` and `env|<program>|AWS_... values|secrets:<n>`.
const DOTNET: &str = r#"#!/bin/bash
leaks=$(env | grep -c -e '^SECRET_' -e '^ENDPOINT_AUTH_' -e '^SYSTEM_ACCESSTOKEN=' -e 'db-password-9')
echo "dotnet|$PWD|$*" >> "$RECORD"
echo "env|dotnet|$AWS_ACCESS_KEY_ID|$AWS_SECRET_ACCESS_KEY|$AWS_SESSION_TOKEN|$AWS_REGION|secrets:$leaks" >> "$RECORD"
case "$1 $2" in
  "tool install")
    [ -n "$INSTALL_FAILS" ] && { echo "Tool 'amazon.lambda.tools' is already installed." >&2; exit 1; }
    mkdir -p "$HOME/.dotnet/tools" && cp "$LAMBDA_STAND_IN" "$HOME/.dotnet/tools/dotnet-lambda" && exit 0 ;;
  "tool update")
    [ -n "$UPDATE_FAILS" ] && exit 1
    mkdir -p "$HOME/.dotnet/tools" && cp "$LAMBDA_STAND_IN" "$HOME/.dotnet/tools/dotnet-lambda" && exit 0 ;;
  "restore "*) exit "${RESTORE_EXIT:-0}" ;;
esac
[ "$1" = lambda ] && exit 0
exit 0
"#;

const LAMBDA: &str = r#"#!/bin/bash
leaks=$(env | grep -c -e '^SECRET_' -e '^ENDPOINT_AUTH_' -e '^SYSTEM_ACCESSTOKEN=' -e 'db-password-9')
echo "dotnet-lambda|$PWD|$*" >> "$RECORD"
echo "env|dotnet-lambda|$AWS_ACCESS_KEY_ID|$AWS_SECRET_ACCESS_KEY|$AWS_SESSION_TOKEN|$AWS_REGION|secrets:$leaks" >> "$RECORD"
case "$1" in
  package) echo zip > "$3" ;;
  package-ci) echo template > "$3" ;;
esac
echo "lambda tools ran $1"
exit "${LAMBDA_EXIT:-0}"
"#;

struct World {
    dir: PathBuf,
    project: PathBuf,
    record: PathBuf,
    home: PathBuf,
    env: TaskEnv,
}

fn world() -> World {
    let dir = std::env::temp_dir().join(unique("netcore"));
    let bin_dir = dir.join("bin");
    let home = dir.join("home");
    let project = dir.join("src/Orders");
    for d in [&bin_dir, &home, &project] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(project.join("Orders.csproj"), "<Project/>").unwrap();
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write(&bin_dir.join("dotnet"), DOTNET);
    let lambda = dir.join("dotnet-lambda-stand-in");
    write(&lambda, LAMBDA);
    let record = dir.join("record.txt");
    let env = TaskEnv::moto()
        .set("PATH", &format!("{}:/usr/bin:/bin", bin_dir.display()))
        .set("HOME", home.to_str().unwrap())
        .set("RECORD", record.to_str().unwrap())
        .set("LAMBDA_STAND_IN", lambda.to_str().unwrap())
        .secret_variable("db", "db-password-9")
        .set("SYSTEM_ACCESSTOKEN", "job-token-7")
        .input(
            "lambdaProjectPath",
            project.join("Orders.csproj").to_str().unwrap(),
        );
    World {
        dir,
        project,
        record,
        home,
        env,
    }
}

impl World {
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("env|"))
            .map(str::to_string)
            .collect()
    }
    fn envs(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("env|"))
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn installs_the_tools_restores_and_deploys_a_function_with_credentials_in_the_environment() {
    let w = world();
    let run = w
        .env
        .clone()
        .input("command", "deployFunction")
        .input("packageOnly", "false")
        .input("functionName", "orders")
        .input("functionHandler", "Orders::Orders.Function::Handler")
        .input("functionRole", "orders-role")
        .input("functionMemory", "512")
        .input("functionTimeout", "30")
        .input(
            "additionalArgs",
            "--msbuild-parameters \"/p:Version=1.2 /p:X=1\"",
        )
        .run(bin());
    run.assert_succeeded();
    let p = w.project.display().to_string();
    let tool = w.home.join(".dotnet/tools/dotnet-lambda");
    assert_eq!(
        w.calls(),
        [
            format!("dotnet|{p}|tool install -g Amazon.Lambda.Tools"),
            format!("dotnet|{p}|restore"),
            format!(
                "dotnet-lambda|{p}|deploy-function --region us-east-1 -fn orders -fh Orders::Orders.Function::Handler --function-role orders-role --function-memory-size 512 --function-timeout 30 --disable-interactive true --msbuild-parameters /p:Version=1.2 /p:X=1"
            ),
        ]
    );
    assert!(
        run.stdout
            .contains("Installing the Amazon.Lambda.Tools global tool.")
    );
    assert!(tool.is_file(), "installed into ~/.dotnet/tools");
    // The credentials in the environment of every call, and no agent secret.
    for e in w.envs() {
        let f: Vec<&str> = e.split('|').collect();
        assert_eq!(f[2], "testing", "{e}");
        assert_eq!(f[3], "testing", "{e}");
        assert_eq!(f[5], "us-east-1", "{e}");
        assert_eq!(f[6], "secrets:0", "{e}");
    }
    assert!(run.stdout.contains("lambda tools ran deploy-function"));
    assert!(
        run.stdout
            .contains("dotnet-lambda deploy-function succeeded.")
    );

    // Installed now: the next run does not install again.
    std::fs::remove_file(&w.record).unwrap();
    w.env
        .clone()
        .input("command", "deployFunction")
        .input("packageOnly", "false")
        .run(bin())
        .assert_succeeded();
    assert_eq!(w.calls()[0], format!("dotnet|{p}|restore"));
    assert!(w.calls()[1].starts_with(&format!(
        "dotnet-lambda|{p}|deploy-function --region us-east-1 --disable-interactive true"
    )));
}

#[test]
fn a_serverless_package_is_written_and_the_profile_cleared() {
    let w = world();
    std::fs::write(
        w.project.join("aws-lambda-tools-defaults.json"),
        "{\"profile\": \"dev-laptop\", \"region\": \"eu-west-1\", \"template\": \"serverless.template\"}",
    )
    .unwrap();
    let out = w.dir.join("out/serverless-output.yaml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let run = w
        .env
        .clone()
        .input("command", "deployServerless")
        .input("packageOnly", "true")
        .input("packageOutputFile", out.to_str().unwrap())
        .input("s3Bucket", "builds")
        .input("s3Prefix", "orders/")
        .run(bin());
    run.assert_succeeded();
    let p = w.project.display().to_string();
    assert_eq!(
        w.calls().last().unwrap(),
        &format!(
            "dotnet-lambda|{p}|package-ci -ot {} --region us-east-1 --s3-bucket builds --s3-prefix orders/ --disable-interactive true",
            out.display()
        )
    );
    assert!(
        run.stdout
            .contains(&format!("Package written to {}", out.display()))
    );
    let defaults: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("aws-lambda-tools-defaults.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(defaults["profile"], "");
    assert_eq!(defaults["template"], "serverless.template");
    assert_eq!(defaults["region"], "eu-west-1");
    assert!(run.stdout.contains("Clearing profile 'dev-laptop'"));
}

#[test]
fn install_falls_back_to_update_and_failures_are_named() {
    let w = world();
    let p = w.project.display().to_string();
    let run = w
        .env
        .clone()
        .set("INSTALL_FAILS", "1")
        .input("command", "deployServerless")
        .input("packageOnly", "false")
        .input("stackName", "orders")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        w.calls()[..2],
        [
            format!("dotnet|{p}|tool install -g Amazon.Lambda.Tools"),
            format!("dotnet|{p}|tool update -g Amazon.Lambda.Tools"),
        ]
    );
    assert!(w.calls()[3].contains("deploy-serverless --stack-name orders --region us-east-1"));

    // Neither install nor update: a warning, then the project's own
    // `dotnet lambda`.
    let w = world();
    let run = w
        .env
        .clone()
        .set("INSTALL_FAILS", "1")
        .set("UPDATE_FAILS", "1")
        .input("command", "deployFunction")
        .input("packageOnly", "false")
        .run(bin());
    run.assert_warned("Amazon.Lambda.Tools could not be installed or updated");
    assert_eq!(run.result().as_deref(), Some("SucceededWithIssues"));
    let p = w.project.display().to_string();
    assert!(
        w.calls()
            .last()
            .unwrap()
            .starts_with(&format!("dotnet|{p}|lambda deploy-function"))
    );

    // A failing restore or deploy fails the task, named.
    let w = world();
    w.env
        .clone()
        .set("RESTORE_EXIT", "3")
        .input("command", "deployFunction")
        .input("packageOnly", "false")
        .run(bin())
        .assert_failed_with("dotnet restore exited with code 3.");
    assert!(!w.calls().iter().any(|c| c.starts_with("dotnet-lambda")));
    let w = world();
    w.env
        .clone()
        .set("LAMBDA_EXIT", "2")
        .input("command", "deployFunction")
        .input("packageOnly", "false")
        .run(bin())
        .assert_failed_with("dotnet-lambda deploy-function exited with code 2.");
}

#[test]
fn bad_inputs_and_a_missing_sdk_are_named_before_anything_runs() {
    let w = world();
    let cases = [
        (
            w.env.clone().input("functionMemory", "64"),
            "functionMemory",
        ),
        (
            w.env.clone().input("functionTimeout", "901"),
            "functionTimeout",
        ),
        (
            w.env.clone().input("packageOnly", "true"),
            "Input required: packageOutputFile (packageOnly is true)",
        ),
        (
            w.env
                .clone()
                .input("lambdaProjectPath", w.dir.join("missing").to_str().unwrap()),
            "Input 'lambdaProjectPath':",
        ),
        (w.env.clone().input("command", "deployContainer"), "command"),
        (
            w.env.clone().set("PATH", "/usr/bin:/bin"),
            "The .NET SDK (dotnet) was not found on the agent's PATH.",
        ),
    ];
    for (env, needle) in cases {
        env.run(bin()).assert_failed_with(needle);
    }
    assert!(w.calls().is_empty(), "nothing ran: {:?}", w.calls());
}
