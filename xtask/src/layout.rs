//! The extension's layout: which tasks exist, and the staged folder that
//! becomes the .vsix (manifests stamped with the workspace version, the
//! launcher and the binaries copied into every task folder).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One task folder of the source tree.
#[derive(Debug, Clone)]
pub struct TaskSource {
    /// The folder name and task.json `name`, e.g. `S3Upload`.
    pub name: String,
    pub dir: PathBuf,
    /// The binary's file name without `.exe`: the lower-cased task name,
    /// which is also the cargo package name.
    pub binary: String,
}

/// Every `tasks/<Name>/task.json`, sorted by name.
pub fn tasks(root: &Path) -> Result<Vec<TaskSource>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root.join("tasks"))? {
        let dir = entry?.path();
        if !dir.join("task.json").is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let json = read_json(&dir.join("task.json"))?;
        if json["name"] != name.as_str() {
            bail!(
                "{}: task.json name is {}, expected {name}",
                dir.display(),
                json["name"]
            );
        }
        out.push(TaskSource {
            binary: name.to_lowercase(),
            name,
            dir,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The tasks named in `list` (comma-separated, any case); an unknown name
/// fails with the names there are.
pub fn select(tasks: Vec<TaskSource>, list: &str) -> Result<Vec<TaskSource>> {
    let wanted: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for w in &wanted {
        if !tasks.iter().any(|t| t.name.eq_ignore_ascii_case(w)) {
            let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
            bail!("no task {w}; tasks: {}", names.join(", "));
        }
    }
    Ok(tasks
        .into_iter()
        .filter(|t| wanted.iter().any(|w| t.name.eq_ignore_ascii_case(w)))
        .collect())
}

pub fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The workspace version (`[workspace.package] version`).
pub fn workspace_version(root: &Path) -> Result<String> {
    let text = fs::read_to_string(root.join("Cargo.toml"))?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some(rest) = line.strip_prefix("version") {
            let v = rest.trim().trim_start_matches('=').trim().trim_matches('"');
            return Ok(v.to_string());
        }
    }
    bail!("no [workspace.package] version in Cargo.toml")
}

/// task.json as shipped: version stamped from the workspace, the region
/// list in every `regionName` pick list.
pub fn stamp_task_json(mut task: Value, version: &str) -> Result<Value> {
    let parts: Vec<u64> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| {
            p.parse()
                .with_context(|| format!("version {version} is not x.y.z"))
        })
        .collect::<Result<_>>()?;
    task["version"] = json!({ "Major": parts[0], "Minor": parts[1], "Patch": parts[2] });
    if let Some(inputs) = task["inputs"].as_array_mut() {
        for input in inputs {
            if input["name"] == "regionName" && input["type"] == "pickList" {
                let options: serde_json::Map<String, Value> = crate::regions::regions()?
                    .iter()
                    .map(|(code, label)| {
                        (code.to_string(), Value::String(format!("{label} [{code}]")))
                    })
                    .collect();
                input["options"] = Value::Object(options);
            }
        }
    }
    Ok(task)
}

/// Binaries to ship: platform (`linux-x64`) → task binary name → file.
pub type Binaries = BTreeMap<String, BTreeMap<String, PathBuf>>;

/// Writes the staged extension folder.
/// Who the extension is published as: the manifest's publisher and id
/// unless overridden, and whether it is a private test build.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub publisher: Option<String>,
    pub extension_id: Option<String>,
    /// A private build that installs beside the released extension in the
    /// same organisation: its own extension id (`-dev`), task GUIDs and
    /// service-connection type, "(dev)" in every name.
    pub dev: bool,
}

/// The service-connection type of the tasks, as in vss-extension.json.
const ENDPOINT_TYPE: &str = "AWSPipelineTasks";

impl Identity {
    /// The extension manifest as this identity publishes it.
    pub fn manifest(&self, mut manifest: Value) -> Result<Value> {
        if let Some(p) = &self.publisher {
            manifest["publisher"] = Value::String(p.clone());
        }
        if let Some(id) = &self.extension_id {
            manifest["id"] = Value::String(id.clone());
        }
        if self.dev {
            let id = manifest["id"].as_str().context("manifest: no id")?;
            manifest["id"] = Value::String(format!("{id}-dev"));
            let name = manifest["name"].as_str().context("manifest: no name")?;
            manifest["name"] = Value::String(format!("{name} (dev)"));
            manifest["public"] = Value::Bool(false);
            for c in manifest["contributions"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if c["properties"]["name"] == ENDPOINT_TYPE {
                    c["properties"]["name"] = Value::String(format!("{ENDPOINT_TYPE}Dev"));
                    let shown = c["properties"]["displayName"]
                        .as_str()
                        .unwrap_or(ENDPOINT_TYPE);
                    c["properties"]["displayName"] = Value::String(format!("{shown} (dev)"));
                }
            }
        }
        Ok(manifest)
    }

    /// A task.json as this identity publishes it.
    pub fn task(&self, mut task: Value) -> Result<Value> {
        if !self.dev {
            return Ok(task);
        }
        let id = task["id"].as_str().context("task.json: no id")?;
        task["id"] = Value::String(dev_guid(id));
        let name = task["friendlyName"].as_str().unwrap_or("");
        task["friendlyName"] = Value::String(format!("{name} (dev)"));
        for input in task["inputs"].as_array_mut().into_iter().flatten() {
            if input["type"] == format!("connectedService:{ENDPOINT_TYPE}") {
                input["type"] = Value::String(format!("connectedService:{ENDPOINT_TYPE}Dev"));
            }
        }
        Ok(task)
    }
}

/// The dev build's GUID for a task: derived from the released one, the
/// same on every build (two 64-bit FNV-1a hashes), never equal to it.
pub fn dev_guid(released: &str) -> String {
    let fnv = |seed: u64| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for b in format!("dev:{}", released.to_ascii_lowercase()).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let (a, b) = (fnv(0), fnv(0x9e37_79b9_7f4a_7c15));
    // RFC 9562 layout: version 8 (custom), variant 10.
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_8000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

pub fn stage(
    root: &Path,
    out: &Path,
    binaries: &Binaries,
    version: &str,
    identity: &Identity,
    packing: Packing,
) -> Result<()> {
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out)?;
    let mut manifest = identity.manifest(read_json(&root.join("vss-extension.json"))?)?;
    manifest["version"] = Value::String(version.to_string());
    write_json(&out.join("vss-extension.json"), &manifest)?;
    copy_dir(&root.join("images"), &out.join("images"))?;
    // The overview page and the licence (`content.*.path`).
    for (_, path) in crate::vsix::content_files(&manifest) {
        fs::copy(root.join(&path), out.join(&path))
            .with_context(|| format!("copying {path}, named in the manifest's content"))?;
    }
    let launcher = root.join("tasks/launcher/run.js");
    let tasks = tasks(root)?;
    check_contributions(&manifest, &tasks)?;
    for task in &tasks {
        let dest = out.join("tasks").join(&task.name);
        fs::create_dir_all(&dest)?;
        let json = stamp_task_json(read_json(&task.dir.join("task.json"))?, version)?;
        write_json(&dest.join("task.json"), &identity.task(json)?)?;
        fs::copy(task.dir.join("icon.png"), dest.join("icon.png"))
            .with_context(|| format!("{}: icon.png", task.name))?;
        fs::copy(&launcher, dest.join("run.js"))?;
    }
    // Brotli at quality 11 takes seconds per binary: one thread per task.
    std::thread::scope(|scope| {
        let jobs: Vec<_> = tasks
            .iter()
            .map(|task| {
                let dest = out.join("tasks").join(&task.name);
                scope.spawn(move || -> Result<()> {
                    if ship_binaries(&dest, &task.binary, binaries, packing)? == 0 {
                        bail!("no binary for task {} on any platform", task.name);
                    }
                    Ok(())
                })
            })
            .collect();
        jobs.into_iter().try_for_each(|j| {
            j.join()
                .map_err(|_| anyhow::anyhow!("packing thread panicked"))?
        })
    })
}

/// How binaries go into a task folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// `bin/<platform>/<name>[.exe]` as built (local runs, tests).
    Plain,
    /// One Brotli stream of every platform's binary, `bin/<name>.br`
    /// (quality 11, 16 MiB window), and `bin/index.json`, which says where
    /// each platform's binary lies in the unpacked stream. One stream finds
    /// what the platforms share (the same strings and tables, and for one
    /// CPU the same code): it is about a quarter smaller than compressing
    /// each binary alone. The launcher unpacks its platform's binary on
    /// first run with Node's built-in zlib.
    Brotli,
    /// The same layout at Brotli quality 5: seconds instead of minutes, for
    /// the task folders of the platform tests.
    BrotliQuick,
}

/// The name of the index of a packed task folder.
pub const INDEX: &str = "index.json";

/// Copies (or packs) a task's binaries into `dest/bin/`; returns how many
/// platforms were shipped.
pub fn ship_binaries(
    dest: &Path,
    binary: &str,
    binaries: &Binaries,
    packing: Packing,
) -> Result<usize> {
    // Packing order: x64 platforms next to each other, then arm64, so that
    // the binaries most alike are closest in the stream.
    let mut mine: Vec<(&str, &PathBuf)> = binaries
        .iter()
        .filter_map(|(platform, bins)| bins.get(binary).map(|p| (platform.as_str(), p)))
        .collect();
    mine.sort_by_key(|(platform, _)| {
        crate::platforms::PLATFORMS
            .iter()
            .position(|p| p.name == *platform)
            .unwrap_or(usize::MAX)
    });
    let exe = |platform: &str| {
        if platform.starts_with("win32") {
            format!("{binary}.exe")
        } else {
            binary.to_string()
        }
    };
    let bin = dest.join("bin");
    fs::create_dir_all(&bin)?;
    match packing {
        Packing::Plain => {
            for (platform, src) in &mine {
                let dir = bin.join(platform);
                fs::create_dir_all(&dir)?;
                fs::copy(src, dir.join(exe(platform)))
                    .with_context(|| format!("copying {}", src.display()))?;
            }
        }
        Packing::Brotli | Packing::BrotliQuick if !mine.is_empty() => {
            let mut stream = Vec::new();
            let mut index = serde_json::Map::new();
            for (platform, src) in &mine {
                let mut data =
                    fs::read(src).with_context(|| format!("reading {}", src.display()))?;
                let mut entry =
                    json!({ "file": exe(platform), "offset": stream.len(), "size": data.len() });
                if let Some(filter) = crate::filters::for_platform(platform) {
                    crate::filters::apply(filter, &mut data, false);
                    entry["filter"] = filter.into();
                }
                index.insert(platform.to_string(), entry);
                stream.extend_from_slice(&data);
            }
            let quality = if packing == Packing::Brotli { 11 } else { 5 };
            fs::write(
                bin.join(format!("{binary}.br")),
                brotli_compress_at(&stream, quality)?,
            )?;
            write_json(
                &bin.join(INDEX),
                &json!({ "stream": format!("{binary}.br"), "platforms": index }),
            )?;
        }
        Packing::Brotli | Packing::BrotliQuick => {}
    }
    Ok(mine.len())
}

pub fn brotli_compress_at(data: &[u8], quality: i32) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality,
        lgwin: 24,
        size_hint: data.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(data.len() / 2);
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).context("brotli compression")?;
    Ok(out)
}

/// Every task folder has a contribution and a `files` entry, and nothing
/// else is listed: a task cannot be forgotten or left dangling.
pub fn check_contributions(manifest: &Value, tasks: &[TaskSource]) -> Result<()> {
    let mut contributed: Vec<String> = manifest["contributions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "ms.vss-distributed-task.task")
        .filter_map(|c| c["properties"]["name"].as_str().map(str::to_string))
        .collect();
    let mut files: Vec<String> = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .filter(|p| p.starts_with("tasks/"))
        .map(str::to_string)
        .collect();
    let mut want: Vec<String> = tasks.iter().map(|t| format!("tasks/{}", t.name)).collect();
    contributed.sort();
    files.sort();
    want.sort();
    if contributed != want || files != want {
        bail!(
            "vss-extension.json does not match tasks/: task folders {want:?}, contributions {contributed:?}, files {files:?}"
        );
    }
    Ok(())
}

pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The Node platform-arch folder for a Rust target triple.
pub fn platform_of(triple: &str) -> Result<String> {
    let arch = match triple.split('-').next().unwrap_or("") {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "i686" | "i586" => "ia32",
        "armv7" | "arm" => "arm",
        other => bail!("unsupported architecture {other} in {triple}"),
    };
    let os = if triple.contains("linux") {
        "linux"
    } else if triple.contains("apple-darwin") {
        "darwin"
    } else if triple.contains("windows") {
        "win32"
    } else {
        bail!("unsupported OS in {triple}")
    };
    Ok(format!("{os}-{arch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_follow_node_names() {
        assert_eq!(
            platform_of("x86_64-unknown-linux-gnu").unwrap(),
            "linux-x64"
        );
        assert_eq!(
            platform_of("aarch64-unknown-linux-musl").unwrap(),
            "linux-arm64"
        );
        assert_eq!(platform_of("aarch64-apple-darwin").unwrap(), "darwin-arm64");
        assert_eq!(platform_of("x86_64-pc-windows-msvc").unwrap(), "win32-x64");
        assert!(platform_of("riscv64gc-unknown-linux-gnu").is_err());
    }

    #[test]
    fn a_dev_build_installs_beside_the_released_one() {
        let dev = Identity {
            publisher: Some("acme".into()),
            extension_id: None,
            dev: true,
        };
        let m = dev
            .manifest(
                json!({"id": "tasks", "name": "T", "public": true, "contributions": [
                {"type": "ms.vss-endpoint.service-endpoint-type",
                 "properties": {"name": "AWSPipelineTasks", "displayName": "AWS"}}]}),
            )
            .unwrap();
        assert_eq!(m["publisher"], "acme");
        assert_eq!(m["id"], "tasks-dev");
        assert_eq!(m["name"], "T (dev)");
        assert_eq!(m["public"], false);
        assert_eq!(
            m["contributions"][0]["properties"]["name"],
            "AWSPipelineTasksDev"
        );
        let guid = "3a219265-181c-4ed2-9a51-75a7f308f0d5";
        let t = dev
            .task(json!({"id": guid, "friendlyName": "S3", "inputs": [
                {"name": "awsCredentials", "type": "connectedService:AWSPipelineTasks"}]}))
            .unwrap();
        let id = t["id"].as_str().unwrap();
        assert_ne!(id, guid);
        assert_eq!(id, dev_guid(guid), "the same GUID on every build");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "8", "version 8");
        assert_eq!(t["friendlyName"], "S3 (dev)");
        assert_eq!(
            t["inputs"][0]["type"],
            "connectedService:AWSPipelineTasksDev"
        );
        // Released builds are left as they are.
        let released = Identity::default();
        assert_eq!(released.task(json!({"id": guid})).unwrap()["id"], guid);
        assert_ne!(
            dev_guid(guid),
            dev_guid("ec87c253-756f-4a7a-be91-4f1c60f9d8fe")
        );
    }

    /// The originals are `@1`; a step ports by changing the task's name
    /// only if ours are `@1` too. Major 2 is for a change of inputs that
    /// breaks existing steps.
    #[test]
    fn the_tasks_are_major_version_1_like_the_originals() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let version = workspace_version(&root).unwrap();
        let task = stamp_task_json(json!({"inputs": []}), &version).unwrap();
        assert_eq!(task["version"]["Major"], 1, "workspace version {version}");
    }

    #[test]
    fn stamping_sets_version_and_regions() {
        let t = json!({"name": "X", "inputs": [{"name": "regionName", "type": "pickList", "options": {}}]});
        let s = stamp_task_json(t, "1.2.3").unwrap();
        assert_eq!(s["version"], json!({"Major": 1, "Minor": 2, "Patch": 3}));
        assert_eq!(
            s["inputs"][0]["options"]["eu-west-1"],
            "Europe (Ireland) [eu-west-1]"
        );
    }
}
