//! AWSPowerShellModuleScript with a stand-in for PowerShell: PowerShell
//! cannot be installed on the machine these tests run on, so a small bash
//! script named `pwsh` takes its place. It records what PowerShell would
//! have been given (its arguments, working folder, environment, the
//! wrapper and the user's script) and ends the way the user's script asks
//! (`# exit N`, `# stderr` lines). What is proven: the command line, the
//! environment, the wrapper's text, the result rules and the clean-up.
//! What is not: that PowerShell and the AWS Tools run the wrapper as
//! intended (only a run on an agent with PowerShell shows that).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use test_support::{TaskEnv, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_awspowershellmodulescript"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const STAND_IN: &str = r#"#!/bin/bash
# A stand-in for pwsh: records what it was given, then ends as the user's
# script asks.
rec="$RECORD_DIR"
printf '%s\n' "$@" > "$rec/args"
pwd > "$rec/pwd"
env | grep -E '^(AWS_|HTTPS?_PROXY|https?_proxy|SECRET_|ENDPOINT_AUTH_|SYSTEM_ACCESSTOKEN)' | sort > "$rec/env"
while [ $# -gt 0 ]; do
  if [ "$1" = "-File" ]; then wrapper="$2"; fi
  shift
done
cp "$wrapper" "$rec/wrapper.ps1"
line=$(grep "^\. '" "$wrapper" | tr -d '\r')
script=${line#". '"}
script=${script%%\'*}
echo "$script" > "$rec/script-path"
cp "$script" "$rec/script.ps1"
echo "pwsh stand-in ran"
if grep -q '^# stderr' "$script"; then echo "an error record" >&2; fi
code=$(sed -n 's/^# exit \([0-9]*\).*/\1/p' "$script" | tr -d '\r')
exit "${code:-0}"
"#;

/// A folder holding the stand-in `pwsh`, and the record folder.
fn stand_in(d: &Path) -> (PathBuf, PathBuf) {
    let bin_dir = d.join("bin");
    let rec = d.join("record");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&rec).unwrap();
    let pwsh = bin_dir.join("pwsh");
    std::fs::write(&pwsh, STAND_IN).unwrap();
    std::fs::set_permissions(&pwsh, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin_dir, rec)
}

fn base(d: &Path) -> (TaskEnv, PathBuf) {
    let (bin_dir, rec) = stand_in(d);
    let env = TaskEnv::moto()
        .set("PATH", &format!("{}:/usr/bin:/bin", bin_dir.display()))
        .set("SYSTEM_DEFAULTWORKINGDIRECTORY", d.to_str().unwrap())
        .set(
            "AGENT_TEMPDIRECTORY",
            d.join("agent-temp").to_str().unwrap(),
        )
        .set("RECORD_DIR", rec.to_str().unwrap())
        .secret_variable("db", "db-password-9")
        .set("SYSTEM_ACCESSTOKEN", "job-token-7");
    (env, rec)
}

fn read(rec: &Path, name: &str) -> String {
    std::fs::read_to_string(rec.join(name))
        .unwrap_or_else(|e| panic!("the stand-in recorded no {name} ({e})"))
}

#[test]
fn an_inline_script_runs_with_the_roles_credentials_and_is_removed() {
    let d = dir("ps-inline");
    let (env, rec) = base(&d);
    let conn = "5a1c0ffe-0000-4000-8000-00000000b5b5";
    let auth = r#"{"parameters":{"username":"AKIAPS00000000000002","password":"ps-conn-secret","assumeRoleArn":"arn:aws:iam::123456789012:role/ps-role"},"scheme":"UsernamePassword"}"#;
    let run = env
        .input("awsCredentials", conn)
        .set(&format!("ENDPOINT_URL_{conn}"), "https://aws.amazon.com/")
        .set(&format!("ENDPOINT_AUTH_SCHEME_{conn}"), "UsernamePassword")
        .set(&format!("ENDPOINT_AUTH_{conn}"), auth)
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_USERNAME"),
            "AKIAPS00000000000002",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_PASSWORD"),
            "ps-conn-secret",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_ASSUMEROLEARN"),
            "arn:aws:iam::123456789012:role/ps-role",
        )
        .input("scriptType", "inline")
        .input("inlineScript", "param($Stage)\r\nGet-S3Bucket\r\n")
        .input("arguments", "-Stage 'blue green'")
        .input("errorActionPreference", "continue")
        .run(bin());
    run.assert_succeeded();
    // PowerShell's command line: the wrapper, no profile, no prompts.
    let args = read(&rec, "args");
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args[..4],
        ["-NoLogo", "-NoProfile", "-NonInteractive", "-File"]
    );
    let temp = d.join("agent-temp");
    assert!(args[4].starts_with(temp.to_str().unwrap()), "{args:?}");
    assert_eq!(read(&rec, "pwd").trim(), d.to_str().unwrap());
    // The wrapper: the preference asked for, the module, the script
    // dot-sourced with its arguments, the exit code passed on.
    let wrapper = std::fs::read(rec.join("wrapper.ps1")).unwrap();
    assert!(
        wrapper.starts_with(&[0xEF, 0xBB, 0xBF]),
        "no byte order mark"
    );
    let wrapper = String::from_utf8(wrapper[3..].to_vec()).unwrap();
    let lines: Vec<&str> = wrapper.split("\r\n").collect();
    assert_eq!(lines[0], "$ErrorActionPreference = 'Continue'");
    assert!(wrapper.contains("Import-Module -Name $awsModule"));
    let script_path = read(&rec, "script-path").trim().to_string();
    assert!(
        lines.contains(&format!(". '{script_path}' -Stage 'blue green'").as_str()),
        "{wrapper}"
    );
    assert!(wrapper.contains("exit $LASTEXITCODE"));
    assert!(!wrapper.contains("Set-AWSProxy"), "no proxy was configured");
    // The user's script, as written, in the agent's temporary folder.
    assert!(script_path.starts_with(temp.to_str().unwrap()));
    let script = std::fs::read(rec.join("script.ps1")).unwrap();
    assert_eq!(script, b"\xEF\xBB\xBFparam($Stage)\r\nGet-S3Bucket");
    // Both files are gone.
    assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 0);
    // The role's credentials, registered before PowerShell started; none of
    // the agent's secret-bearing variables.
    let env = read(&rec, "env");
    let value = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in {env}"))
            .to_string()
    };
    assert!(value("AWS_ACCESS_KEY_ID").starts_with("ASIA"));
    assert_eq!(value("AWS_REGION"), "us-east-1");
    assert_eq!(
        value("AWS_EXECUTION_ENV"),
        "aws-pipeline-tasks-AWSPowerShellModuleScript"
    );
    let started = run.stdout.find("pwsh stand-in ran").unwrap();
    for secret in [value("AWS_SECRET_ACCESS_KEY"), value("AWS_SESSION_TOKEN")] {
        let at = run
            .stdout
            .find(&format!("##vso[task.setsecret]{secret}"))
            .unwrap_or_else(|| panic!("{secret} not registered"));
        assert!(at < started);
    }
    for hidden in ["SECRET_", "ENDPOINT_AUTH_", "SYSTEM_ACCESSTOKEN"] {
        assert!(!env.lines().any(|l| l.starts_with(hidden)), "{env}");
    }
    let mut secrets: Vec<String> = run.registered_secrets();
    secrets.push("ps-conn-secret".into());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    test_support::assert_no_leaks(&run, &secrets);
}

/// OIDC: PowerShell gets the session the job's Azure DevOps token was
/// exchanged for, registered before it starts; neither token reaches it or
/// the log.
#[test]
fn an_oidc_connections_role_reaches_powershell() {
    const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL3BzIn0.c2ln";
    let d = dir("ps-oidc");
    let (env, rec) = base(&d);
    let ado = test_support::ado_oidc(OIDC_TOKEN);
    let run = env
        .oidc_connection(
            "5a1c0ffe-0000-4000-8000-00000000051d",
            "arn:aws:iam::123456789012:role/oidc-ps",
            &ado,
        )
        .input("scriptType", "inline")
        .input("inlineScript", "Get-STSCallerIdentity")
        .run(bin());
    run.assert_succeeded();
    let env = read(&rec, "env");
    let value = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in {env}"))
            .to_string()
    };
    assert!(value("AWS_ACCESS_KEY_ID").starts_with("ASIA"));
    let started = run.stdout.find("pwsh stand-in ran").unwrap();
    for secret in [value("AWS_SECRET_ACCESS_KEY"), value("AWS_SESSION_TOKEN")] {
        let at = run
            .stdout
            .find(&format!("##vso[task.setsecret]{secret}"))
            .unwrap_or_else(|| panic!("{secret} not registered"));
        assert!(at < started);
    }
    assert!(
        !env.contains(OIDC_TOKEN) && !env.contains(test_support::ADO_JOB_TOKEN),
        "{env}"
    );
    let mut secrets = run.registered_secrets();
    secrets.extend([
        OIDC_TOKEN.to_string(),
        test_support::ADO_JOB_TOKEN.to_string(),
    ]);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    test_support::assert_no_leaks(&run, &secrets);
}

#[test]
fn a_script_file_runs_in_the_folder_asked_for() {
    let d = dir("ps-file");
    let (env, rec) = base(&d);
    std::fs::create_dir_all(d.join("scripts")).unwrap();
    std::fs::write(d.join("scripts/deploy.ps1"), "Write-Host deploy\n").unwrap();
    let work = d.join("work/not-yet");
    let run = env
        .input("filePath", "scripts/deploy.ps1")
        .input("workingDirectory", work.to_str().unwrap())
        .input("ignoreLASTEXITCODE", "true")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(read(&rec, "pwd").trim(), work.to_str().unwrap());
    assert_eq!(
        read(&rec, "script-path").trim(),
        d.join("scripts/deploy.ps1").to_str().unwrap()
    );
    let wrapper = read(&rec, "wrapper.ps1");
    assert!(wrapper.contains("$ErrorActionPreference = 'Stop'"));
    assert!(!wrapper.contains("LASTEXITCODE"), "{wrapper}");
    // The user's own file stays.
    assert!(d.join("scripts/deploy.ps1").is_file());
}

#[test]
fn exit_codes_and_standard_error_decide_the_result() {
    let d = dir("ps-exit");
    let (env, _) = base(&d);
    let script = |body: &str| {
        env.clone()
            .input("scriptType", "inline")
            .input("inlineScript", body)
    };
    script("Write-Host x\n# exit 4\n")
        .run(bin())
        .assert_failed_with("PowerShell exited with code 4.");
    let run = script("Write-Host x\n# stderr\n").run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("an error record\n"), "{}", run.stdout);
    script("Write-Host x\n# stderr\n")
        .input("failOnStderr", "true")
        .run(bin())
        .assert_failed_with("The script wrote to standard error, and failOnStderr is true.");
    let run = env.clone().input("filePath", "missing.ps1").run(bin());
    run.assert_failed_with("Input 'filePath': the script '");
    // Nothing started.
    assert!(!run.stdout.contains("pwsh stand-in ran"));
}

#[test]
fn the_agents_proxy_is_set_for_the_aws_tools_without_writing_its_password() {
    let d = dir("ps-proxy");
    let (env, rec) = base(&d);
    let run = env
        .input("scriptType", "inline")
        .input("inlineScript", "Get-S3Bucket\n")
        .set("AGENT_PROXYURL", "http://proxy.example:3128")
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "pr0xy@pass")
        .run(bin());
    run.assert_succeeded();
    let wrapper = read(&rec, "wrapper.ps1");
    assert!(wrapper.contains("Set-AWSProxy @awsProxyArgs"), "{wrapper}");
    assert!(!wrapper.contains("pr0xy"), "{wrapper}");
    let env = read(&rec, "env");
    assert!(
        env.contains("HTTPS_PROXY=http://builder:pr0xy%40pass@proxy.example:3128"),
        "{env}"
    );
    assert!(
        run.registered_secrets()
            .contains(&"pr0xy%40pass".to_string())
    );
}

#[test]
fn without_powershell_the_error_says_what_to_install() {
    let d = dir("ps-none");
    let (env, _) = base(&d);
    let run = env
        .set("PATH", "/usr/bin:/bin")
        .input("scriptType", "inline")
        .input("inlineScript", "Write-Host hi")
        .run(bin());
    run.assert_failed_with("PowerShell 7 (pwsh) was not found on the agent's PATH.");
    assert!(!run.stdout.contains("AWS credentials:"), "{}", run.stdout);
}
