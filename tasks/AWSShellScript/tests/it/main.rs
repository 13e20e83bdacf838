//! AWSShellScript with the real bash, credentials from moto: what the
//! script saw is written to files by the script itself and read back.

use std::path::{Path, PathBuf};

use test_support::{TaskEnv, TaskRun, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_awsshellscript"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A script that records its arguments, working folder and the
/// environment variables named in `vars`, one `name=value` per line.
const RECORD: &str = r#"#!/bin/bash
out="$RECORD_TO"
{
  echo "pwd=$(pwd)"
  for a in "$@"; do echo "arg=$a"; done
  for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_EXECUTION_ENV HTTPS_PROXY http_proxy SECRET_DB SECRET_AGENT_PROXYPASSWORD ENDPOINT_AUTH_PARAMETER_X_PASSWORD SYSTEM_ACCESSTOKEN INPUT_ARGUMENTS; do
    if [ -n "${!v+x}" ]; then echo "$v=${!v}"; fi
  done
} > "$out"
echo "script says hello"
"#;

fn recorded(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("the script wrote no record ({e})"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn base(d: &Path) -> TaskEnv {
    TaskEnv::moto()
        .set("AWS_ACCESS_KEY_ID", "AKIASHELL00000000001")
        .set("AWS_SECRET_ACCESS_KEY", "shell-secret-key-1")
        .set("SYSTEM_DEFAULTWORKINGDIRECTORY", d.to_str().unwrap())
        .set(
            "AGENT_TEMPDIRECTORY",
            d.join("agent-temp").to_str().unwrap(),
        )
        .set("RECORD_TO", d.join("record.txt").to_str().unwrap())
        .secret_variable("db", "db-password-9")
        .set("ENDPOINT_AUTH_PARAMETER_X_PASSWORD", "endpoint-pw")
        .set("SYSTEM_ACCESSTOKEN", "job-token-7")
}

#[test]
fn a_script_file_runs_with_credentials_and_without_the_agents_secrets() {
    let d = dir("shell-file");
    std::fs::write(d.join("deploy.sh"), RECORD).unwrap();
    let run = base(&d)
        .input("filePath", "deploy.sh")
        .input("arguments", r#"--stage "blue green" x"#)
        .run(bin());
    run.assert_succeeded();
    let record = recorded(&d.join("record.txt"));
    assert_eq!(
        record,
        [
            format!("pwd={}", d.display()),
            "arg=--stage".into(),
            "arg=blue green".into(),
            "arg=x".into(),
            "AWS_ACCESS_KEY_ID=AKIASHELL00000000001".into(),
            "AWS_SECRET_ACCESS_KEY=shell-secret-key-1".into(),
            "AWS_REGION=us-east-1".into(),
            "AWS_DEFAULT_REGION=us-east-1".into(),
            "AWS_EXECUTION_ENV=aws-pipeline-tasks-AWSShellScript".into(),
            "INPUT_ARGUMENTS=--stage \"blue green\" x".into(),
        ]
    );
    assert!(run.stdout.contains("script says hello\n"), "{}", run.stdout);
    assert!(
        run.registered_secrets()
            .contains(&"shell-secret-key-1".to_string())
    );
}

#[test]
fn an_assumed_role_reaches_the_script_with_its_session_token_registered_first() {
    let d = dir("shell-role");
    std::fs::write(d.join("s.sh"), RECORD).unwrap();
    let conn = "5a1c0ffe-0000-4000-8000-00000000beef";
    let auth = r#"{"parameters":{"username":"AKIASHELL00000000002","password":"shell-conn-secret","assumeRoleArn":"arn:aws:iam::123456789012:role/scripts"},"scheme":"UsernamePassword"}"#;
    let run = base(&d)
        .input("filePath", d.join("s.sh").to_str().unwrap())
        .input("awsCredentials", conn)
        .set(&format!("ENDPOINT_URL_{conn}"), "https://aws.amazon.com/")
        .set(&format!("ENDPOINT_AUTH_SCHEME_{conn}"), "UsernamePassword")
        .set(&format!("ENDPOINT_AUTH_{conn}"), auth)
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_USERNAME"),
            "AKIASHELL00000000002",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_PASSWORD"),
            "shell-conn-secret",
        )
        .set(
            &format!("ENDPOINT_AUTH_PARAMETER_{conn}_ASSUMEROLEARN"),
            "arn:aws:iam::123456789012:role/scripts",
        )
        .input("durationSeconds", "3600")
        .run(bin());
    run.assert_succeeded();
    // The session asked for (an hour, not the default 15 minutes).
    assert!(
        run.stdout
            .contains("The script's credentials expire in 59 min."),
        "{}",
        run.stdout
    );
    let record = recorded(&d.join("record.txt"));
    let value = |name: &str| {
        record
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in {record:?}"))
            .to_string()
    };
    let key = value("AWS_ACCESS_KEY_ID");
    let token = value("AWS_SESSION_TOKEN");
    let secret = value("AWS_SECRET_ACCESS_KEY");
    assert_ne!(
        key, "AKIASHELL00000000002",
        "the role's keys, not the connection's"
    );
    // Registered before the script started (the script's own line comes
    // after), and never printed by the task.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let hello = lines
        .iter()
        .position(|l| *l == "script says hello")
        .unwrap();
    for s in [&token, &secret] {
        let at = lines
            .iter()
            .position(|l| *l == format!("##vso[task.setsecret]{s}"))
            .unwrap_or_else(|| panic!("{s} not registered:\n{}", run.stdout));
        assert!(at < hello);
        assert_eq!(run.stdout.matches(s.as_str()).count(), 1, "{}", run.stdout);
    }
    // No secret-bearing variable of the agent reached the script.
    for hidden in [
        "SECRET_DB",
        "ENDPOINT_AUTH_PARAMETER_X_PASSWORD",
        "SYSTEM_ACCESSTOKEN",
    ] {
        assert!(!record.iter().any(|l| l.starts_with(&format!("{hidden}="))));
    }
}

/// OIDC: the job's Azure DevOps token is exchanged for the connection's
/// role; the script gets that session, registered before it starts, and
/// neither the OIDC token nor the job's access token.
#[test]
fn an_oidc_connections_role_reaches_the_script() {
    const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL3NoZWxsIn0.c2ln";
    let d = dir("shell-oidc");
    std::fs::write(d.join("s.sh"), RECORD).unwrap();
    let ado = test_support::ado_oidc(OIDC_TOKEN);
    let run = base(&d)
        .oidc_connection(
            "5a1c0ffe-0000-4000-8000-0000000001dc",
            "arn:aws:iam::123456789012:role/oidc-scripts",
            &ado,
        )
        .input("filePath", d.join("s.sh").to_str().unwrap())
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        ado.requests().len(),
        1,
        "the OIDC token was not asked for once"
    );
    let record = recorded(&d.join("record.txt"));
    let value = |name: &str| {
        record
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in {record:?}"))
            .to_string()
    };
    let (key, secret, token) = (
        value("AWS_ACCESS_KEY_ID"),
        value("AWS_SECRET_ACCESS_KEY"),
        value("AWS_SESSION_TOKEN"),
    );
    assert!(key.starts_with("ASIA"), "not a session key: {key}");
    let hello = run.stdout.find("script says hello").unwrap();
    for s in [&secret, &token] {
        let at = run
            .stdout
            .find(&format!("##vso[task.setsecret]{s}"))
            .unwrap_or_else(|| panic!("{s} not registered:\n{}", run.stdout));
        assert!(at < hello);
    }
    test_support::assert_no_leaks(
        &run,
        &[OIDC_TOKEN, test_support::ADO_JOB_TOKEN, &secret, &token],
    );
    for hidden in ["SYSTEM_ACCESSTOKEN", "ENDPOINT_AUTH_PARAMETER_X_PASSWORD"] {
        assert!(!record.iter().any(|l| l.starts_with(&format!("{hidden}="))));
    }
    assert!(
        !record
            .iter()
            .any(|l| l.contains(OIDC_TOKEN) || l.contains(test_support::ADO_JOB_TOKEN))
    );
}

#[test]
fn an_inline_script_runs_in_the_folder_asked_for_and_is_removed() {
    let d = dir("shell-inline");
    let work = d.join("not/yet/there");
    let run = base(&d)
        .input("scriptType", "inline")
        .input(
            "inlineScript",
            "echo \"inline in $(pwd) from $0\"\necho \"##vso[task.setvariable variable=fromScript]42\"\n",
        )
        .input("disableAutoCwd", "true")
        .input("workingDirectory", work.to_str().unwrap())
        .run(bin());
    run.assert_succeeded();
    let temp = d.join("agent-temp");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("inline in "))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with(&format!(
            "inline in {} from {}",
            work.display(),
            temp.display()
        )),
        "{line}"
    );
    // The script's own logging commands reach the agent.
    assert_eq!(run.variable("fromScript").as_deref(), Some("42"));
    // Its file is gone.
    assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 0);
}

#[test]
fn exit_codes_and_standard_error_decide_the_result() {
    let d = dir("shell-exit");
    let script = |body: &str| {
        base(&d)
            .input("scriptType", "inline")
            .input("inlineScript", body)
    };
    // Windows line ends in an inline script do not reach bash.
    let run = script("echo crlf-ok\r\nexit 0\r\n").run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("crlf-ok\n"), "{}", run.stdout);
    script("echo before\nexit 3\n")
        .run(bin())
        .assert_failed_with("The script exited with code 3.");
    // Standard error is shown; it fails the task only when asked.
    let run = script("echo oops >&2\n").run(bin());
    run.assert_succeeded();
    assert!(run.stdout.contains("oops\n"), "{}", run.stdout);
    script("echo oops >&2\n")
        .input("failOnStandardError", "true")
        .run(bin())
        .assert_failed_with("The script wrote to standard error, and failOnStandardError is true.");
    script("true\n")
        .input("durationSeconds", "60")
        .run(bin())
        .assert_failed_with("durationSeconds");
    let run: TaskRun = base(&d).input("filePath", "no-such-script.sh").run(bin());
    run.assert_failed_with("Input 'filePath': the script '");
    run.assert_failed_with("no-such-script.sh' does not exist");
}

/// Cancelling the step ends the script and what it started.
#[test]
fn cancelling_ends_the_whole_process_group() {
    let d = dir("shell-cancel");
    let pids = d.join("pids");
    let run = base(&d)
        .input("scriptType", "inline")
        .input(
            "inlineScript",
            &format!(
                "sleep 300 &\necho $! > {p}.tmp\necho $$ >> {p}.tmp\nmv {p}.tmp {p}\nwait\n",
                p = pids.display()
            ),
        )
        .spawn(bin())
        .after("the script started its child", || pids.exists());
    run.cancel();
    let run = run.wait();
    run.assert_failed_with(
        "Cancelled (SIGTERM): the script and the processes it started were stopped.",
    );
    let alive = |pid: i32| {
        // SAFETY: kill with signal 0 only checks that the process exists.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, 0) == 0
        }
    };
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let pid: i32 = pid.trim().parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!alive(pid), "process {pid} of the script is still running");
    }
}

/// Tools in the script (the AWS CLI, curl) go through the agent's proxy,
/// its credentials in the URL and registered as secrets.
#[test]
fn the_agents_proxy_reaches_the_scripts_tools() {
    let d = dir("shell-proxy");
    let proxy = test_support::ForwardProxy::start(None);
    let run = base(&d)
        .input("scriptType", "inline")
        .input("inlineScript", RECORD)
        .set("AGENT_PROXYURL", &proxy.url)
        .set("AGENT_PROXYUSERNAME", "builder")
        .set("SECRET_AGENT_PROXYPASSWORD", "pr0xy@pass")
        .run(bin());
    run.assert_succeeded();
    let with_auth = proxy.url.replacen("://", "://builder:pr0xy%40pass@", 1);
    let record = recorded(&d.join("record.txt"));
    assert!(
        record.contains(&format!("HTTPS_PROXY={with_auth}")),
        "{record:?}"
    );
    assert!(
        record.contains(&format!("http_proxy={with_auth}")),
        "{record:?}"
    );
    assert!(
        !record
            .iter()
            .any(|l| l.starts_with("SECRET_AGENT_PROXYPASSWORD="))
    );
    let secrets = run.registered_secrets();
    assert!(secrets.contains(&"pr0xy@pass".to_string()));
    assert!(secrets.contains(&"pr0xy%40pass".to_string()));
}

/// Without bash the task says what is missing, before anything runs. On
/// Windows (under Wine in the platform tests) there is no Git Bash or WSL.
#[test]
fn without_bash_the_error_says_what_to_install() {
    let d = dir("shell-nobash");
    let empty = d.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let windows = test_support::platform::platform().as_deref() == Some("win32-x64");
    let mut env = base(&d)
        .input("scriptType", "inline")
        .input("inlineScript", "true");
    if !windows {
        env = env.set("PATH", empty.to_str().unwrap());
    }
    let run = env.run(bin());
    if windows {
        run.assert_failed_with("bash was not found on the agent's PATH. On Windows the script needs Git for Windows (its Git Bash) or WSL");
    } else {
        run.assert_failed_with("Neither bash nor sh was found on the agent's PATH.");
    }
    // Nothing was resolved or run.
    assert!(!run.stdout.contains("AWS credentials:"), "{}", run.stdout);
}
