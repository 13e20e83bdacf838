//! SystemsManagerGetParameter against moto.

use std::path::Path;

use aws_sdk_ssm::types::ParameterType;
use test_support::{TaskEnv, TaskRun, assert_no_leaks, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_systemsmanagergetparameter"))
}

fn put(name: &str, value: &str, kind: ParameterType) {
    let ssm = aws_sdk_ssm::Client::new(&sdk_config());
    block_on(
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send(),
    )
    .unwrap();
}

fn vars(run: &TaskRun) -> Vec<(String, String, bool)> {
    run.commands()
        .into_iter()
        .filter(|c| c.is("task.setvariable"))
        .map(|c| {
            (
                c.property("variable").unwrap().to_string(),
                c.message.clone(),
                c.property("issecret") == Some("true"),
            )
        })
        .collect()
}

#[test]
fn a_single_parameter_with_each_name_transform() {
    let base = format!("/{}", unique("app"));
    let name = format!("{base}/db/host");
    put(&name, "db.example.com", ParameterType::String);
    let single = || {
        TaskEnv::moto()
            .input("readMode", "single")
            .input("parameterName", &name)
    };

    let run = single().run(bin());
    run.assert_succeeded();
    assert_eq!(vars(&run), [(name.clone(), "db.example.com".into(), false)]);

    let run = single().input("singleNameTransform", "leaf").run(bin());
    assert_eq!(vars(&run)[0].0, "host");

    let run = single()
        .input("singleNameTransform", "custom")
        .input("customVariableName", "dbHost")
        .run(bin());
    assert_eq!(vars(&run)[0].0, "dbHost");

    let run = single()
        .input("singleNameTransform", "substitute")
        .input("replacementPattern", "/")
        .input("replacementText", ".")
        .run(bin());
    assert_eq!(vars(&run)[0].0, name.replace('/', "."));
}

#[test]
fn a_version_is_read_as_asked() {
    let name = format!("/{}/v", unique("ver"));
    put(&name, "one", ParameterType::String);
    put(&name, "two", ParameterType::String);
    let run = TaskEnv::moto()
        .input("parameterName", &name)
        .input("parameterVersion", "1")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(vars(&run)[0].1, "one");
    TaskEnv::moto()
        .input("parameterName", &name)
        .input("parameterVersion", "latest")
        .run(bin())
        .assert_failed_with(
            "Input 'parameterVersion' must be a version number of 1 or more (got 'latest')",
        );
}

#[test]
fn a_hierarchy_with_secure_strings_becomes_secret_variables() {
    let base = format!("/{}", unique("tree"));
    put(&format!("{base}/a"), "plain-a", ParameterType::String);
    put(
        &format!("{base}/nested/b"),
        "secure;b]%",
        ParameterType::SecureString,
    );
    put(
        &format!("{base}/nested/c"),
        "x,y",
        ParameterType::StringList,
    );

    let hierarchy = || {
        TaskEnv::moto()
            .input("readMode", "hierarchy")
            .input("parameterPath", &base[1..])
    };
    let run = hierarchy().run(bin());
    run.assert_succeeded();
    assert_eq!(
        vars(&run),
        [(format!("{base}/a"), "plain-a".into(), false)],
        "not recursive: one level"
    );

    let run = hierarchy()
        .input("recursive", "true")
        .input("hierarchyNameTransform", "leaf")
        .run(bin());
    run.assert_succeeded();
    let mut got = vars(&run);
    got.sort();
    assert_eq!(
        got,
        [
            ("a".to_string(), "plain-a".to_string(), false),
            ("b".to_string(), "secure;b]%".to_string(), true),
            ("c".to_string(), "x,y".to_string(), false),
        ]
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("variable=b;"))
        .unwrap();
    assert_eq!(
        line,
        "##vso[task.setvariable variable=b;issecret=true;]secure;b]%AZP25"
    );
    let filtered = TaskRun {
        stdout: run
            .stdout
            .lines()
            .filter(|l| *l != line)
            .map(|l| format!("{l}\n"))
            .collect(),
        stderr: run.stderr.clone(),
        code: run.code,
    };
    assert_no_leaks(&filtered, &["secure;b]%"]);
}

#[test]
fn missing_parameters_and_bad_inputs_are_named() {
    let name = format!("/{}/none", unique("missing"));
    TaskEnv::moto()
        .input("parameterName", &name)
        .run(bin())
        .assert_failed_with(&format!(
            "Parameter '{name}' was not found in region us-east-1"
        ));
    TaskEnv::moto()
        .input("readMode", "hierarchy")
        .input("parameterPath", &format!("/{}", unique("empty")))
        .run(bin())
        .assert_failed_with("No parameters found under path");
    TaskEnv::moto()
        .input("readMode", "hierarchy")
        .run(bin())
        .assert_failed_with("Input required: parameterPath");
    TaskEnv::moto()
        .input("parameterName", "/x")
        .input("singleNameTransform", "substitute")
        .input("replacementPattern", "([")
        .run(bin())
        .assert_failed_with("Input 'replacementPattern': '([' is not a valid regular expression");
    TaskEnv::moto()
        .input("parameterName", "/x")
        .input("readMode", "tree")
        .run(bin())
        .assert_failed_with("Input 'readMode' must be one of: single, hierarchy (got 'tree')");
}
