//! Our .vsix against Microsoft's packager on the same staged layout.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::layout::{self, Binaries};

use crate::{root, temp};

/// A staged layout with a small real executable as every task's binary.
fn staged(name: &str) -> PathBuf {
    staged_as(
        name,
        &layout::Identity {
            publisher: Some("test-publisher".into()),
            ..Default::default()
        },
    )
}

fn staged_as(name: &str, identity: &layout::Identity) -> PathBuf {
    let dir = temp(name).join("stage");
    let tasks = layout::tasks(&root()).unwrap();
    let bins: BTreeMap<String, PathBuf> = tasks
        .iter()
        .map(|t| (t.binary.clone(), PathBuf::from("/bin/true")))
        .collect();
    let binaries: Binaries = [("linux-x64".to_string(), bins)].into();
    layout::stage(
        &root(),
        &dir,
        &binaries,
        "1.2.3",
        identity,
        layout::Packing::Brotli,
    )
    .unwrap();
    dir
}

fn entries(vsix: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(vsix).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.insert(f.name().unwrap().to_string(), bytes);
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn the_vsix_is_deterministic_and_stamped() {
    let stage = staged("determinism");
    let a = xtask::vsix::write(&stage, &stage.parent().unwrap().join("a")).unwrap();
    let b = xtask::vsix::write(&stage, &stage.parent().unwrap().join("b")).unwrap();
    assert_eq!(
        a.file_name().unwrap(),
        "test-publisher.aws-pipeline-tasks-1.2.3.vsix"
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same input, same bytes"
    );

    let e = entries(&a);
    for task in layout::tasks(&root()).unwrap() {
        let base = format!("tasks/{}", task.name);
        let json: serde_json::Value =
            serde_json::from_slice(&e[&format!("{base}/task.json")]).unwrap();
        assert_eq!(
            json["version"],
            serde_json::json!({"Major": 1, "Minor": 2, "Patch": 3})
        );
        assert!(
            json["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == "regionName" && i["options"]["eu-west-1"].is_string())
        );
        assert!(e.contains_key(&format!("{base}/run.js")));
        assert!(e.contains_key(&format!("{base}/icon.png")));
        assert!(e.contains_key(&format!("{base}/bin/{}.br", task.binary)));
        let index: serde_json::Value =
            serde_json::from_slice(&e[&format!("{base}/bin/index.json")]).unwrap();
        assert_eq!(index["stream"], format!("{}.br", task.binary));
        assert_eq!(index["platforms"]["linux-x64"]["file"], task.binary);
    }
    let vsixmanifest = String::from_utf8_lossy(&e["extension.vsixmanifest"]).into_owned();
    assert!(
        vsixmanifest
            .contains(r#"Id="aws-pipeline-tasks" Publisher="test-publisher" Version="1.2.3""#)
    );
    // The Marketplace page is in the package, and every relative link or
    // image in it resolves to a file of the package.
    assert!(vsixmanifest.contains(
        r#"<Asset Type="Microsoft.VisualStudio.Services.Content.Details" d:Source="File" Path="overview.md""#
    ));
    // The licence is packaged and named as the Marketplace shows it.
    assert!(vsixmanifest.contains("<License>LICENSE</License>"));
    assert_eq!(
        e["LICENSE"],
        std::fs::read(root().join("LICENSE")).unwrap(),
        "LICENSE"
    );
    let overview = String::from_utf8_lossy(&e["overview.md"]).into_owned();
    assert!(overview.starts_with("# AWS Pipeline Tasks"));
    for target in overview
        .split("](")
        .skip(1)
        .filter_map(|t| t.split(')').next())
    {
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        assert!(
            e.contains_key(target.trim_start_matches("./")),
            "overview.md links to {target}, which is not in the .vsix"
        );
    }
}

#[test]
fn the_vsix_matches_tfx_cli() {
    matches_tfx(&staged("tfx"));
}

/// A `--dev` build: tfx takes it too, and nothing in it is the released
/// extension's (id, task GUIDs, service-connection type).
#[test]
fn a_dev_vsix_matches_tfx_cli_and_shares_no_id_with_the_release() {
    let dev = layout::Identity {
        publisher: Some("test-publisher".into()),
        dev: true,
        ..Default::default()
    };
    let stage = staged_as("tfx-dev", &dev);
    matches_tfx(&stage);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stage.join("vss-extension.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["id"], "aws-pipeline-tasks-dev");
    for task in layout::tasks(&root()).unwrap() {
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let released = read(&task.dir.join("task.json"));
        let shipped = read(&stage.join("tasks").join(&task.name).join("task.json"));
        assert_ne!(shipped["id"], released["id"], "{}", task.name);
        assert_eq!(shipped["name"], released["name"]);
        assert!(
            shipped["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["type"] == "connectedService:AWSPipelineTasksDev"),
            "{}",
            task.name
        );
    }
}

fn matches_tfx(stage: &Path) {
    let tfx = std::env::var("TFX")
        .expect("TFX is not set: run `cargo xtask test`, which installs tfx-cli");
    let stage = stage.to_path_buf();
    let ours = xtask::vsix::write(&stage, &stage.parent().unwrap().join("ours")).unwrap();
    let out_dir = stage.parent().unwrap().join("tfx");
    std::fs::create_dir_all(&out_dir).unwrap();
    let theirs = out_dir.join("theirs.vsix");
    let output = Command::new(&tfx)
        .current_dir(&stage)
        .args([
            "extension",
            "create",
            "--root",
            ".",
            "--manifest-globs",
            "vss-extension.json",
            "--no-prompt",
            "--output-path",
        ])
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tfx refused the layout:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = entries(&ours);
    let theirs = entries(&theirs);
    let names = |e: &BTreeMap<String, Vec<u8>>| e.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "file lists");
    for (name, bytes) in &theirs {
        match name.as_str() {
            "extension.vsomanifest" => {
                let a: serde_json::Value = serde_json::from_slice(&ours[name]).unwrap();
                let b: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                assert_eq!(a, b, "{name}");
            }
            "extension.vsixmanifest" | "[Content_Types].xml" => {
                assert_eq!(lines(&ours[name]), lines(bytes), "{name}");
            }
            _ => assert_eq!(&ours[name], bytes, "{name}"),
        }
    }
}

/// The released identity is real, not a placeholder, and the manifest's
/// links (getting started, support, issues, licence) and repository all
/// point into the repository that Cargo.toml names: one place to change.
#[test]
fn the_manifest_is_ready_for_the_marketplace() {
    let text = std::fs::read_to_string(root().join("vss-extension.json")).unwrap();
    for placeholder in [
        "your-",
        "example.invalid",
        "example.com",
        "TODO",
        "changeme",
    ] {
        assert!(
            !text.contains(placeholder),
            "vss-extension.json still holds the placeholder {placeholder:?}"
        );
    }
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let repo = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = "))
        .expect("Cargo.toml's workspace.package names the repository")
        .trim_matches('"');
    assert!(repo.starts_with("https://"), "{repo}");
    assert_eq!(m["repository"]["type"], "git");
    assert_eq!(m["repository"]["uri"], repo);
    for link in ["getstarted", "support", "issues", "license"] {
        let uri = m["links"][link]["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("links.{link} is missing"));
        assert!(
            uri.starts_with(repo),
            "links.{link}: {uri} is not under {repo}"
        );
    }
    // Every file a link names under blob/main is in the repository.
    for (link, v) in m["links"].as_object().unwrap() {
        let uri = v["uri"].as_str().unwrap();
        if let Some(path) = uri.strip_prefix(&format!("{repo}/blob/main/")) {
            assert!(
                root().join(path).is_file(),
                "links.{link}: {path} is not in the repository"
            );
        }
    }
    let publisher = m["publisher"].as_str().unwrap();
    assert!(
        publisher.len() >= 3
            && publisher
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "publisher {publisher:?}"
    );
    assert_eq!(
        m["public"], true,
        "the released listing is public; --dev builds are private"
    );
    assert!(m["description"].as_str().unwrap().chars().count() <= 200);
    assert_eq!(m["content"]["license"]["path"], "LICENSE");
}
