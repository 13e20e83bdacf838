//! LambdaDeployFunction against moto, read back with GetFunctionConfiguration,
//! GetAlias and ListTags.

use std::io::Write;
use std::path::{Path, PathBuf};

use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambdadeployfunction"))
}

fn lambda() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk_config())
}

/// A role Lambda can use (moto checks that it exists); returns (name, arn).
fn role() -> (String, String) {
    let name = unique("role");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let arn = block_on(
        aws_sdk_iam::Client::new(&sdk_config())
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust)
            .send(),
    )
    .unwrap()
    .role
    .unwrap()
    .arn;
    (name, arn)
}

fn folder(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("code"));
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn zip_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.zip", unique("code")));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.finish().unwrap();
    path
}

fn config(
    name: &str,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    block_on(
        lambda()
            .get_function_configuration()
            .function_name(name)
            .send(),
    )
    .unwrap()
}

fn full(name: &str, role: &str, code: &Path) -> TaskEnv {
    TaskEnv::moto()
        .input("deploymentMode", "codeandconfiguration")
        .input("functionName", name)
        .input("functionHandler", "index.handler")
        .input("runtime", "python3.12")
        .input("roleARN", role)
        .input("codeLocation", "localfolder")
        .input("localFolder", code.to_str().unwrap())
        .input("publish", "false")
}

#[test]
fn creates_a_function_with_its_configuration() {
    let (role_name, role_arn) = role();
    let name = unique("create");
    let code = folder(&[("index.py", "def handler(e, c):\n    return e\n")]);
    let run = full(&name, &role_name, &code)
        .input("memorySize", "256")
        .input("timeout", "30")
        .input("description", "deployed by the pipeline")
        .input("environment", "STAGE=prod\nURL=https://x/?a=b")
        .input("tags", "team=platform")
        .input("architectures", "arm64")
        .input("outputVariable", "functionArn")
        .run(bin());
    run.assert_succeeded();
    let c = config(&name);
    assert_eq!(c.runtime().map(|r| r.as_str()), Some("python3.12"));
    assert_eq!(c.handler(), Some("index.handler"));
    assert_eq!(
        c.role(),
        Some(role_arn.as_str()),
        "the role name was resolved to its ARN"
    );
    assert_eq!((c.memory_size(), c.timeout()), (Some(256), Some(30)));
    assert_eq!(c.description(), Some("deployed by the pipeline"));
    let env = c.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env.get("STAGE").map(String::as_str), Some("prod"));
    assert_eq!(env.get("URL").map(String::as_str), Some("https://x/?a=b"));
    assert_eq!(
        c.architectures()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["arm64"]
    );
    assert_eq!(c.state().map(|s| s.as_str()), Some("Active"));
    assert_eq!(run.variable("functionArn").as_deref(), c.function_arn());
    let tags = block_on(
        lambda()
            .list_tags()
            .resource(c.function_arn().unwrap())
            .send(),
    )
    .unwrap();
    assert_eq!(
        tags.tags().and_then(|t| t.get("team")).map(String::as_str),
        Some("platform")
    );
}

#[test]
fn the_same_folder_twice_is_reported_unchanged() {
    let (role_name, _) = role();
    let name = unique("same");
    let code = folder(&[
        ("index.py", "def handler(e, c):\n    return 1\n"),
        ("lib/util.py", "X = 1\n"),
    ]);
    full(&name, &role_name, &code).run(bin()).assert_succeeded();
    let first = config(&name).code_sha256().unwrap().to_string();
    // Touch the files: timestamps must not matter.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(code.join("lib/util.py"), "X = 1\n").unwrap();
    let run = TaskEnv::moto()
        .input("functionName", &name)
        .input("codeLocation", "localfolder")
        .input("localFolder", code.to_str().unwrap())
        .input("publish", "false")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout
            .contains(&format!("Code unchanged (CodeSha256 {first})")),
        "{}",
        run.stdout
    );
    assert_eq!(config(&name).code_sha256(), Some(first.as_str()));
}

#[test]
fn code_only_updates_publishes_and_points_an_alias() {
    let (role_name, _) = role();
    let name = unique("code");
    full(&name, &role_name, &folder(&[("index.py", "v = 1\n")]))
        .run(bin())
        .assert_succeeded();
    let before = config(&name).code_sha256().unwrap().to_string();
    let zip = zip_file("v = 2\n");
    let run = TaskEnv::moto()
        .input("functionName", &name)
        .input("localZipFile", zip.to_str().unwrap())
        .input("publish", "true")
        .input("aliasName", "live")
        .input("versionOutputVariable", "version")
        .run(bin());
    run.assert_succeeded();
    let c = config(&name);
    assert_ne!(c.code_sha256(), Some(before.as_str()));
    assert_eq!(
        c.last_update_status().map(|s| s.as_str()),
        Some("Successful")
    );
    let version = run.variable("version").expect("the version output");
    let alias = block_on(
        lambda()
            .get_alias()
            .function_name(&name)
            .name("live")
            .send(),
    )
    .unwrap();
    assert_eq!(alias.function_version(), Some(version.as_str()));
}

#[test]
fn configuration_updates_keep_what_is_not_given() {
    let (role_name, _) = role();
    let name = unique("keep");
    let code = folder(&[("index.py", "v = 1\n")]);
    full(&name, &role_name, &code)
        .input("environment", "KEEP=me")
        .run(bin())
        .assert_succeeded();
    // A second deploy without environment lines must not wipe them.
    full(&name, &role_name, &code)
        .input("memorySize", "512")
        .run(bin())
        .assert_succeeded();
    let c = config(&name);
    assert_eq!(c.memory_size(), Some(512));
    let env = c.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env.get("KEEP").map(String::as_str), Some("me"));
}

#[test]
fn error_cases_are_named() {
    let missing = unique("missing");
    let zip = zip_file("x = 1\n");
    TaskEnv::moto()
        .input("functionName", &missing)
        .input("localZipFile", zip.to_str().unwrap())
        .run(bin())
        .assert_failed_with(&format!("Function '{missing}' does not exist in region us-east-1, and deploymentMode 'codeonly' cannot create it"));

    let not_zip = std::env::temp_dir().join(format!("{}.zip", unique("notzip")));
    std::fs::write(&not_zip, "plain text").unwrap();
    TaskEnv::moto()
        .input("functionName", "f")
        .input("localZipFile", not_zip.to_str().unwrap())
        .run(bin())
        .assert_failed_with("is not a zip file");

    let big = std::env::temp_dir().join(format!("{}.zip", unique("big")));
    let f = std::fs::File::create(&big).unwrap();
    (&f).write_all(b"PK\x03\x04").unwrap();
    f.set_len(51 * 1024 * 1024).unwrap();
    TaskEnv::moto()
        .input("functionName", "f")
        .input("localZipFile", big.to_str().unwrap())
        .run(bin())
        .assert_failed_with("over Lambda's 50 MiB limit for direct uploads. Upload it to S3");

    TaskEnv::moto()
        .input("functionName", "f")
        .input("localZipFile", "/no/such.zip")
        .run(bin())
        .assert_failed_with("Input 'localZipFile'");

    // Left empty, the agent passes the sources folder: not set, not "a
    // folder is not a file".
    let sources = std::env::temp_dir();
    TaskEnv::moto()
        .input("functionName", "f")
        .set("BUILD_SOURCESDIRECTORY", sources.to_str().unwrap())
        .input("localZipFile", sources.to_str().unwrap())
        .run(bin())
        .assert_failed_with("Input required: localZipFile (codeLocation is 'localfile')");

    let code = folder(&[("index.py", "x = 1\n")]);
    full(&unique("norole"), "no-such-role", &code)
        .run(bin())
        .assert_failed_with("Input 'roleARN': role 'no-such-role' was not found in IAM");

    full(&unique("mem"), "r", &code)
        .input("memorySize", "64")
        .run(bin())
        .assert_failed_with(
            "Input 'memorySize' must be a whole number from 128 to 10240 (got '64')",
        );

    TaskEnv::moto()
        .input("functionName", "f")
        .input("localZipFile", zip.to_str().unwrap())
        .input("aliasName", "live")
        .input("publish", "false")
        .run(bin())
        .assert_failed_with("Input 'aliasName' needs 'publish'");
}

/// moto finishes updates at once; the proxy makes Lambda say InProgress
/// twice (the task must keep polling), or Failed (the reason must surface).
fn status_proxy(name: String, states: Vec<&'static str>) -> test_support::HttpServer {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = AtomicUsize::new(0);
    test_support::faulty_proxy(&test_support::moto(), move |req| {
        if req.method != "GET"
            || !req
                .path()
                .ends_with(&format!("/functions/{name}/configuration"))
        {
            return None;
        }
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let status = states.get(n)?;
        Some(
            test_support::Response::new(
                200,
                serde_json::json!({
                    "FunctionName": name,
                    "State": "Active",
                    "LastUpdateStatus": status,
                    "LastUpdateStatusReason": "The runtime failed to start: bad handler"
                })
                .to_string(),
            )
            .header("Content-Type", "application/json"),
        )
    })
}

#[test]
fn updates_are_waited_for_and_failures_explained() {
    let (role_name, _) = role();
    let name = unique("wait");
    full(&name, &role_name, &folder(&[("index.py", "v = 1\n")]))
        .run(bin())
        .assert_succeeded();

    let p = status_proxy(name.clone(), vec!["InProgress", "InProgress"]);
    let run = TaskEnv::moto()
        .set("AWS_ENDPOINT_URL", &p.url)
        .input("functionName", &name)
        .input("localZipFile", zip_file("v = 2\n").to_str().unwrap())
        .input("publish", "false")
        .run(bin());
    run.assert_succeeded();
    let polls = p
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/configuration"))
        .count();
    assert!(
        polls >= 3,
        "polled until the update finished ({polls} polls)"
    );
    assert!(run.stdout.contains("Waiting for"), "{}", run.stdout);

    let p = status_proxy(name.clone(), vec!["Failed"]);
    TaskEnv::moto()
        .set("AWS_ENDPOINT_URL", &p.url)
        .input("functionName", &name)
        .input("localZipFile", zip_file("v = 3\n").to_str().unwrap())
        .input("publish", "false")
        .run(bin())
        .assert_failed_with(&format!(
            "Lambda reports the update of '{name}' failed: The runtime failed to start: bad handler"
        ));
}

/// Publishes a layer version in moto; returns its ARN.
fn publish_layer(name: &str, text: &str) -> String {
    let zip = std::fs::read(zip_file(text)).unwrap();
    block_on(
        lambda()
            .publish_layer_version()
            .layer_name(name)
            .content(
                aws_sdk_lambda::types::LayerVersionContentInput::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                    .build(),
            )
            .send(),
    )
    .unwrap()
    .layer_version_arn
    .unwrap()
}

#[test]
fn layers_by_arn_by_name_and_version_or_by_name_alone() {
    let (role_name, _) = role();
    let (deps, tools, extra) = (unique("deps"), unique("tools"), unique("extra"));
    let deps_1 = publish_layer(&deps, "V = 1\n");
    let deps_2 = publish_layer(&deps, "V = 2\n");
    let tools_1 = publish_layer(&tools, "T = 1\n");
    let extra_1 = publish_layer(&extra, "E = 1\n");
    assert!(deps_2.ends_with(":2"), "{deps_2}");
    let name = unique("layered");
    let code = folder(&[("index.py", "def handler(e, c):\n    return e\n")]);
    let run = full(&name, &role_name, &code)
        .input("layers", &format!("{deps}:1\n{tools}\n{extra_1}\n"))
        .run(bin());
    run.assert_succeeded();
    let arns = |name: &str| -> Vec<String> {
        config(name)
            .layers()
            .iter()
            .filter_map(|l| l.arn().map(str::to_string))
            .collect()
    };
    assert_eq!(arns(&name), [deps_1.clone(), tools_1, extra_1]);
    assert!(
        run.stdout.contains(&format!("Layer {deps}:1: {deps_1}")),
        "{}",
        run.stdout
    );

    // A name alone is the latest version, on update too.
    full(&name, &role_name, &code)
        .input("layers", &deps)
        .run(bin())
        .assert_succeeded();
    assert_eq!(arns(&name), [deps_2]);

    // A version that does not exist fails naming the input, and the
    // function keeps its layers: nothing was changed.
    let run = full(&name, &role_name, &code)
        .input("layers", &format!("{deps}:7"))
        .input("memorySize", "512")
        .run(bin());
    run.assert_failed_with(&format!("Input 'layers': version 7 of layer '{deps}'"));
    assert_eq!(config(&name).memory_size(), Some(128));

    let run = full(&name, &role_name, &code)
        .input("layers", "not a layer")
        .run(bin());
    run.assert_failed_with("Input 'layers': 'not a layer' is not a layer version ARN");
}
