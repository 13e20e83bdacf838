//! Every task.json keeps the original task's input names and defaults, so a
//! YAML step ports by changing only the task reference.

use serde_json::Value;
use xtask::layout;

use crate::root;

/// Tasks of ours that the toolkit does not have, with the reason.
const NEW_TASKS: &[(&str, &str)] = &[
    (
        "ConfigureAWSCredentials",
        "credentials once for every later step, like configure-aws-credentials on GitHub Actions",
    ),
    (
        "LambdaPublishLayerVersion",
        "layers, which the toolkit's users ask for; LambdaDeployFunction takes them by name",
    ),
];

/// Deliberate differences from the original, with the reason.
const DIFFERENT_DEFAULTS: &[(&str, &str, &str)] = &[];

fn originals() -> Value {
    let text =
        std::fs::read_to_string(root().join("xtask/tests/data/original-task-inputs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn default_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[test]
fn every_task_keeps_the_original_inputs_and_defaults() {
    let originals = originals();
    let tasks = layout::tasks(&root()).unwrap();
    assert!(!tasks.is_empty());
    for task in tasks {
        let ours = layout::read_json(&task.dir.join("task.json")).unwrap();
        if NEW_TASKS.iter().any(|(n, _)| *n == task.name) {
            // The inputs every task shares, as every other task has them.
            let input = |name: &str| {
                ours["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["name"] == name)
                    .unwrap_or_else(|| panic!("{}: no input {name}", task.name))
                    .clone()
            };
            assert_eq!(
                input("awsCredentials")["type"],
                "connectedService:AWSPipelineTasks"
            );
            assert_eq!(input("regionName")["type"], "pickList");
            let id = ours["id"].as_str().unwrap().to_lowercase();
            assert!(
                originals
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|o| o["id"].as_str() != Some(id.as_str())),
                "{}: an original's id",
                task.name
            );
            continue;
        }
        let original = &originals[&task.name];
        assert!(
            original.is_object(),
            "{} is not an original task",
            task.name
        );
        let inputs = ours["inputs"].as_array().unwrap();
        for orig in original["inputs"].as_array().unwrap() {
            let name = orig["name"].as_str().unwrap();
            let mine = inputs
                .iter()
                .find(|i| i["name"] == name)
                .unwrap_or_else(|| {
                    panic!("{}: input '{name}' of the original is missing", task.name)
                });
            let want = orig["default"].as_str().unwrap();
            let exception = DIFFERENT_DEFAULTS
                .iter()
                .any(|(t, n, _)| *t == task.name && *n == name);
            if !exception {
                assert_eq!(
                    default_text(&mine["defaultValue"]),
                    want,
                    "{}: default of '{name}'",
                    task.name
                );
            }
            let otype = orig["type"].as_str().unwrap();
            let mtype = mine["type"].as_str().unwrap();
            if otype.starts_with("connectedService:") {
                assert_eq!(
                    mtype, "connectedService:AWSPipelineTasks",
                    "{}: {name}",
                    task.name
                );
            } else {
                assert_eq!(mtype, otype, "{}: type of '{name}'", task.name);
            }
        }
        // Our own identity, so both extensions can be installed side by side.
        assert_ne!(
            ours["id"].as_str().unwrap().to_lowercase(),
            original["id"].as_str().unwrap()
        );
    }
}

#[test]
fn every_task_json_is_what_the_agent_and_tfx_require() {
    let mut ids = std::collections::BTreeSet::new();
    for task in layout::tasks(&root()).unwrap() {
        let t = layout::read_json(&task.dir.join("task.json")).unwrap();
        let name = &task.name;
        assert!(
            ids.insert(t["id"].as_str().unwrap().to_string()),
            "{name}: duplicate id"
        );
        assert!(
            t["version"].is_null(),
            "{name}: the version is stamped by the packager, not written by hand"
        );
        let friendly = t["friendlyName"].as_str().unwrap();
        assert!(
            (1..=40).contains(&friendly.chars().count()),
            "{name}: friendlyName over 40 characters"
        );
        assert!(
            t["instanceNameFormat"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        assert_eq!(t["execution"]["Node20_1"]["target"], "run.js", "{name}");
        assert_eq!(t["execution"]["Node24"]["target"], "run.js", "{name}");
        assert_eq!(t["minimumAgentVersion"], "4.248.0", "{name}");
        assert!(task.dir.join("icon.png").is_file(), "{name}: icon.png");
        for input in t["inputs"].as_array().unwrap() {
            let n = input["name"].as_str().unwrap();
            assert!(
                n.chars().next().unwrap().is_ascii_alphabetic()
                    && n.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}: input {n}"
            );
            if let Some(group) = input["groupName"].as_str() {
                assert!(
                    t["groups"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|g| g["name"] == group),
                    "{name}: group {group}"
                );
            }
        }
        for out in t["outputVariables"].as_array().into_iter().flatten() {
            let n = out["name"].as_str().unwrap();
            assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}: output {n}"
            );
        }
    }
}

#[test]
fn vss_extension_lists_every_task_once() {
    let manifest = layout::read_json(&root().join("vss-extension.json")).unwrap();
    layout::check_contributions(&manifest, &layout::tasks(&root()).unwrap()).unwrap();
    let endpoint = manifest["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ms.vss-endpoint.service-endpoint-type")
        .unwrap();
    assert_eq!(endpoint["properties"]["name"], "AWSPipelineTasks");
    let fields: Vec<&str> = endpoint["properties"]["authenticationSchemes"][0]["inputDescriptors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "username",
            "password",
            "sessionToken",
            "assumeRoleArn",
            "roleSessionName",
            "externalId",
            "useOIDC"
        ]
    );
    assert_eq!(
        endpoint["properties"]["inputDescriptors"][0]["id"],
        "endpointUrl"
    );
}
