//! AWSCLI with the real AWS CLI (v1, from PyPI, installed by `cargo xtask
//! test` into its own virtualenv) against moto: what the CLI did is read
//! back from moto. The CLI reaches moto through `AWS_ENDPOINT_URL` in the
//! tests' environment, which the task passes on like any other variable:
//! nothing in the task knows about it.

use std::path::{Path, PathBuf};

use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_awscli"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// PATH with the pinned CLI's folder first.
fn path_with_cli() -> String {
    let cli = std::env::var("AWS_CLI_DIR").expect(
        "AWS_CLI_DIR is not set: run the tests with `cargo xtask test`, which installs the AWS CLI",
    );
    format!("{cli}:{}", std::env::var("PATH").unwrap_or_default())
}

fn base() -> TaskEnv {
    TaskEnv::moto()
        .set("PATH", &path_with_cli())
        .secret_variable("db", "db-password-9")
        .set("SYSTEM_ACCESSTOKEN", "job-token-7")
}

fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config())
            .force_path_style(true)
            .build(),
    )
}

/// The connection's role is assumed once by the task; the CLI gets the
/// role's session, registered as secrets before it starts.
#[test]
fn the_cli_runs_as_the_connections_assumed_role() {
    let conn = "5a1c0ffe-0000-4000-8000-0000000c11aa";
    let auth = r#"{"parameters":{"username":"AKIACLI0000000000002","password":"cli-conn-secret","assumeRoleArn":"arn:aws:iam::123456789012:role/cli-role"},"scheme":"UsernamePassword"}"#;
    let run = base()
        .input("awsCredentials", conn)
        .set(&format!("ENDPOINT_URL_{conn}"), "https://aws.amazon.com/")
        .set(&format!("ENDPOINT_AUTH_SCHEME_{conn}"), "UsernamePassword")
        .set(&format!("ENDPOINT_AUTH_{conn}"), auth)
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_USERNAME"),
            "AKIACLI0000000000002",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_PASSWORD"),
            "cli-conn-secret",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_ASSUMEROLEARN"),
            "arn:aws:iam::123456789012:role/cli-role",
        )
        .input("awsCommand", "sts")
        .input("awsSubCommand", "get-caller-identity")
        .input("awsArguments", "--query Arn --output text")
        .run(bin());
    run.assert_succeeded();
    let arn = run
        .stdout
        .lines()
        .find(|l| l.starts_with("arn:aws:sts::123456789012:assumed-role/cli-role/"))
        .unwrap_or_else(|| panic!("the CLI did not print the role's ARN:\n{}", run.stdout));
    assert!(!arn.is_empty());
    // The role's secret key and token were registered before the CLI ran,
    // and the connection's secret never printed.
    let secrets = run.registered_secrets();
    assert!(secrets.len() >= 3, "{secrets:?}");
    let first_cli_line = run.stdout.find(arn).unwrap();
    for s in &secrets {
        let at = run
            .stdout
            .find(&format!("##vso[task.setsecret]{s}"))
            .unwrap();
        assert!(at < first_cli_line);
    }
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.push("cli-conn-secret");
    test_support::assert_no_leaks(&run, &all);
    assert!(
        run.stdout
            .contains("aws sts get-caller-identity succeeded."),
        "{}",
        run.stdout
    );
}

/// OIDC: the CLI runs as the role the job's Azure DevOps token was
/// exchanged for, and neither token reaches the log.
#[test]
fn the_cli_runs_as_an_oidc_connections_role() {
    const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL2NsaSJ9.c2ln";
    let ado = test_support::ado_oidc(OIDC_TOKEN);
    let run = base()
        .oidc_connection(
            "5a1c0ffe-0000-4000-8000-0000000c110d",
            "arn:aws:iam::123456789012:role/oidc-cli",
            &ado,
        )
        .input("awsCommand", "sts")
        .input("awsSubCommand", "get-caller-identity")
        .input("awsArguments", "--query Arn --output text")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("arn:aws:sts::123456789012:assumed-role/oidc-cli/")),
        "the CLI did not run as the OIDC role:\n{}",
        run.stdout
    );
    let secrets = run.registered_secrets();
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.extend([OIDC_TOKEN, test_support::ADO_JOB_TOKEN]);
    test_support::assert_no_leaks(&run, &all);
}

/// Quoted arguments keep their spaces: the file and the key land as given.
#[test]
fn quoted_arguments_reach_the_cli_whole() {
    let d = dir("cli-cp");
    let file = d.join("my report.txt");
    std::fs::write(&file, "quarterly numbers\n").unwrap();
    let bucket = unique("cli-bucket").to_lowercase();
    block_on(s3().create_bucket().bucket(&bucket).send()).unwrap();
    let run = base()
        .input("awsCommand", "s3")
        .input("awsSubCommand", "cp")
        .input(
            "awsArguments",
            &format!(
                r#""{}" "s3://{bucket}/reports/q1 final.txt" --metadata stage=blue --no-progress"#,
                file.display()
            ),
        )
        .run(bin());
    run.assert_succeeded();
    let head = block_on(
        s3().head_object()
            .bucket(&bucket)
            .key("reports/q1 final.txt")
            .send(),
    )
    .unwrap_or_else(|e| panic!("the object is not there: {e:?}\n{}", run.stdout));
    assert_eq!(head.content_length(), Some(18));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("stage"))
            .map(String::as_str),
        Some("blue")
    );
}

#[test]
fn a_failing_command_fails_the_task_with_its_exit_code() {
    let run = base()
        .input("awsCommand", "s3api")
        .input("awsSubCommand", "head-bucket")
        .input(
            "awsArguments",
            &format!("--bucket {}", unique("missing").to_lowercase()),
        )
        .run(bin());
    run.assert_failed_with("aws s3api head-bucket exited with code 255.");
}

#[test]
fn without_the_cli_the_error_says_what_to_install() {
    let d = dir("cli-none");
    let run = base()
        .set("PATH", d.to_str().unwrap())
        .input("awsCommand", "s3")
        .run(bin());
    run.assert_failed_with("The AWS CLI (aws) was not found on the agent's PATH.");
    // Nothing was resolved.
    assert!(!run.stdout.contains("AWS credentials:"), "{}", run.stdout);
}

/// A stand-in `aws` that writes to standard error and exits 0, and records
/// what it was given: standard error fails the task only when asked, and
/// the agent's secret-bearing variables never reach the CLI.
#[cfg(unix)]
#[test]
fn standard_error_fails_only_when_asked_and_secrets_stay_with_the_agent() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir("cli-stderr");
    let record = d.join("record.txt");
    let fake = d.join("aws");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{r}'\nenv | grep -E '^(SECRET_|SYSTEM_ACCESSTOKEN|ENDPOINT_AUTH_|AWS_)' | sort >> '{r}'\necho 'a warning' >&2\n",
            r = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = base()
        .set("PATH", &format!("{}:/usr/bin:/bin", d.display()))
        .set("ENDPOINT_AUTH_PARAMETER_X_PASSWORD", "endpoint-pw")
        .input("awsCommand", "ec2")
        .input("awsSubCommand", "describe-instances")
        .input(
            "awsArguments",
            r#"--filters "Name=tag:Name,Values=web server""#,
        );
    let run = env.run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("a warning\n"), "{}", run.stdout);
    let seen = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(
        lines[..3],
        ["ec2", "describe-instances", "--filters"],
        "{seen}"
    );
    assert_eq!(lines[3], "Name=tag:Name,Values=web server");
    for hidden in ["SECRET_", "SYSTEM_ACCESSTOKEN", "ENDPOINT_AUTH_"] {
        assert!(
            !lines.iter().any(|l| l.starts_with(hidden)),
            "{hidden} reached the CLI:\n{seen}"
        );
    }
    for set in [
        "AWS_ACCESS_KEY_ID=testing",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_EXECUTION_ENV=aws-pipeline-tasks-AWSCLI",
        "AWS_REGION=us-east-1",
    ] {
        assert!(lines.contains(&set), "{set} not in:\n{seen}");
    }
    env.input("failOnStandardError", "true")
        .run(bin())
        .assert_failed_with(
            "aws ec2 describe-instances wrote to standard error, and failOnStandardError is true.",
        );
}
