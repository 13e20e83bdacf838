//! The task editor's help: every task says what it does and which IAM
//! permissions it needs, and every input has help, so a new task or input
//! without it fails here.

use std::path::Path;

fn task_jsons() -> Vec<(String, serde_json::Value)> {
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks");
    let mut out: Vec<_> = std::fs::read_dir(&tasks)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("task.json"))
        .filter(|p| p.is_file())
        .map(|p| {
            let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                json,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_task_and_every_input_has_help() {
    let tasks = task_jsons();
    assert!(
        tasks.len() >= 11,
        "found only {} task.json files",
        tasks.len()
    );
    let mut missing = Vec::new();
    for (task, json) in &tasks {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").trim().to_string();
        if text(&json["description"]).is_empty() {
            missing.push(format!("{task}: no description"));
        }
        let help = text(&json["helpMarkDown"]);
        if !help.contains("**IAM permissions:** ") {
            missing.push(format!(
                "{task}: its helpMarkDown does not list '**IAM permissions:** '"
            ));
        }
        for input in json["inputs"].as_array().unwrap() {
            if text(&input["helpMarkDown"]).len() < 20 {
                missing.push(format!(
                    "{task}: input '{}' has no help (or less than a sentence)",
                    text(&input["name"])
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
