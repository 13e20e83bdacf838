//! The help users read: every task says what it does and which IAM
//! permissions it needs, and every input has help, so a new task or input
//! without it fails here; and docs/examples.md holds a step per task that
//! its task.json accepts; relative links in the README and docs resolve.

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

/// docs/examples.md: one step per task, `@1`, and every input it sets is an
/// input of that task, with a value its pick list or boolean allows, so the
/// examples cannot drift from the tasks.
#[test]
fn every_task_has_an_example_that_its_task_json_accepts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let tasks = task_jsons();
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    let mut current: Option<&serde_json::Value> = None;
    for line in doc.lines() {
        if let Some(reference) = line.strip_prefix("- task: ") {
            let (name, major) = reference.split_once('@').unwrap_or((reference, ""));
            if major != "1" {
                problems.push(format!("{reference}: not @1"));
            }
            current = tasks.iter().find(|(n, _)| n == name).map(|(_, j)| j);
            if current.is_none() {
                problems.push(format!("{name}: no such task"));
            }
            seen.push(name.to_string());
            continue;
        }
        // The end of the block, or another kind of step (a script that
        // uses the task's variables): not the task's inputs.
        if line.starts_with("```") || line.starts_with("- ") {
            current = None;
            continue;
        }
        let Some(json) = current else { continue };
        // Inputs sit at four spaces; deeper lines continue a `|` value.
        let Some(setting) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let Some((key, value)) = setting.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches('\'');
        let task = json["name"].as_str().unwrap();
        let Some(input) = json["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == key)
        else {
            problems.push(format!("{task}: no input '{key}'"));
            continue;
        };
        let editable = input["properties"]["EditableOptions"]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match input["type"].as_str().unwrap() {
            "boolean" if !["true", "false"].contains(&value) => {
                problems.push(format!("{task}: {key}: {value} is not a boolean"))
            }
            "pickList" | "radio"
                if !editable
                    && !value.starts_with("$(")
                    && input["options"].get(value).is_none() =>
            {
                problems.push(format!("{task}: {key}: {value} is not one of its options"))
            }
            _ => {}
        }
    }
    for (name, _) in &tasks {
        if !seen.contains(name) {
            problems.push(format!("{name}: no example in docs/examples.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every relative link and image in the README and the docs names a file
/// of the repository (the overview's are checked inside the .vsix by
/// xtask's tests).
#[test]
fn relative_links_in_the_readme_and_docs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages = vec![root.join("README.md")];
    for name in [
        "CONTRIBUTING.md",
        "SECURITY.md",
        "CHANGELOG.md",
        "ARCHITECTURE.md",
    ] {
        pages.push(root.join(name));
    }
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for target in text.split("](").skip(1).filter_map(|t| t.split(')').next()) {
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !page.parent().unwrap().join(target).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(pages.len() >= 8, "{pages:?}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
