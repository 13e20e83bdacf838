//! Writes a Marketplace .vsix from a staged folder, as `tfx extension create`
//! would: `[Content_Types].xml`, `extension.vsixmanifest`,
//! `extension.vsomanifest`, and the files the manifest lists. Deterministic:
//! sorted entries, fixed timestamps, no mode bits; the same input gives the
//! same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use zip::write::SimpleFileOptions;

/// One file of the package.
#[derive(Debug, Clone)]
pub struct Part {
    /// Part name without the leading `/`, e.g. `tasks/S3Upload/task.json`.
    pub name: String,
    pub source: PathBuf,
    pub addressable: bool,
}

/// The manifest's `content` files (the Marketplace overview page
/// `details`, the `license`): asset type suffix (`Details`, `License`) and
/// path, as tfx names them.
pub fn content_files(manifest: &Value) -> Vec<(String, String)> {
    let Some(content) = manifest["content"].as_object() else {
        return Vec::new();
    };
    content
        .iter()
        .filter_map(|(key, v)| {
            let path = v["path"].as_str()?;
            // lodash's startCase of the lower-cased key: "details" -> "Details".
            let lower = key.to_lowercase();
            let mut kind = lower[..1].to_uppercase();
            kind.push_str(&lower[1..]);
            Some((
                kind,
                path.trim_start_matches("./").trim_matches('/').to_string(),
            ))
        })
        .collect()
}

/// Files listed in the manifest's `files`, directories expanded, sorted.
pub fn parts(staged: &Path, manifest: &Value) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for f in manifest["files"].as_array().into_iter().flatten() {
        let path = f["path"].as_str().context("a files entry without path")?;
        let addressable = f["addressable"].as_bool().unwrap_or(false);
        let base = f["packagePath"]
            .as_str()
            .unwrap_or(path)
            .trim_matches('/')
            .to_string();
        let src = staged.join(path);
        if src.is_dir() {
            for file in walk(&src)? {
                let rel = file
                    .strip_prefix(&src)?
                    .to_string_lossy()
                    .replace('\\', "/");
                parts.push(Part {
                    name: format!("{base}/{rel}"),
                    source: file,
                    addressable,
                });
            }
        } else {
            parts.push(Part {
                name: base,
                source: src,
                addressable,
            });
        }
    }
    // The Marketplace page and the licence (`content`), packaged as tfx
    // does even when `files` does not list them.
    for (kind, path) in content_files(manifest) {
        if parts.iter().any(|p| p.name == path) {
            continue;
        }
        let source = staged.join(&path);
        if !source.is_file() {
            bail!(
                "content.{} names {path}, which is not in the extension",
                kind.to_lowercase()
            );
        }
        parts.push(Part {
            name: path,
            source,
            addressable: false,
        });
    }
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    for p in &parts {
        validate_part_name(&p.name)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &parts {
        if !seen.insert(p.name.to_lowercase()) {
            bail!(
                "two files would be packaged as '{}' (part names are case-insensitive)",
                p.name
            );
        }
    }
    Ok(parts)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// tfx's part-name rules.
fn validate_part_name(name: &str) -> Result<()> {
    for segment in name.split('/') {
        let bad = segment
            .chars()
            .any(|c| c.is_whitespace() || "#^[]<>?".contains(c))
            || segment.ends_with('.')
            || segment.to_lowercase().contains("%2f")
            || segment.to_lowercase().contains("%5c");
        if bad {
            bail!("'{name}' cannot be a part name: no whitespace or #^[]<>?, no trailing '.'");
        }
    }
    Ok(())
}

/// The content type tfx would give a file: by extension, else by content
/// (what `file --mime-type` says for executables).
pub fn content_type(name: &str, bytes: &[u8]) -> (Option<String>, String) {
    let ext = Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy().to_lowercase()));
    let by_ext = match ext.as_deref() {
        Some(".js") => Some("application/javascript"),
        Some(".json") => Some("application/json"),
        Some(".png") => Some("image/png"),
        Some(".md") => Some("text/markdown"),
        Some(".txt") => Some("text/plain"),
        Some(".vsixmanifest") => Some("text/xml"),
        Some(".vsomanifest") => Some("application/json"),
        _ => None,
    };
    if let Some(t) = by_ext {
        return (ext, t.to_string());
    }
    // tfx's best guess for well-known files without an extension.
    let base = name.rsplit('/').next().unwrap_or(name).to_uppercase();
    if ext.is_none() && matches!(base.as_str(), "README" | "LICENSE" | "AUTHORS") {
        return (None, "text/plain".to_string());
    }
    let sniffed = if bytes.starts_with(b"\x7fELF") && bytes.len() > 17 {
        match u16::from_le_bytes([bytes[16], bytes[17]]) {
            2 => "application/x-executable",
            3 => "application/x-pie-executable",
            _ => "application/octet-stream",
        }
    } else if bytes.starts_with(b"MZ") {
        "application/vnd.microsoft.portable-executable"
    } else if bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
    {
        "application/x-mach-binary"
    } else if bytes.starts_with(b"#!") {
        "text/x-shellscript"
    } else {
        "application/octet-stream"
    };
    (ext, sniffed.to_string())
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `[Content_Types].xml`: one Default per extension, an Override for files
/// without one (or whose content type differs from their extension's).
pub fn content_types_xml(parts: &[(String, Vec<u8>)]) -> String {
    let mut defaults: BTreeMap<String, String> = BTreeMap::new();
    let mut overrides = Vec::new();
    for (name, bytes) in parts {
        match content_type(name, bytes) {
            (Some(ext), t) => {
                let existing = defaults.entry(ext).or_insert_with(|| t.clone());
                if *existing != t {
                    overrides.push((name.clone(), t));
                }
            }
            (None, t) => overrides.push((name.clone(), t)),
        }
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\n",
    );
    for (ext, t) in &defaults {
        out.push_str(&format!(
            "  <Default Extension=\"{}\" ContentType=\"{}\"/>\n",
            xml(ext),
            xml(t)
        ));
    }
    for (name, t) in &overrides {
        out.push_str(&format!(
            "  <Override ContentType=\"{}\" PartName=\"/{}\"/>\n",
            xml(t),
            xml(name)
        ));
    }
    out.push_str("</Types>\n");
    out
}

const VSIXMANIFEST_ONLY: &[&str] = &[
    "id",
    "publisher",
    "version",
    "name",
    "description",
    "icons",
    "files",
    "tags",
    "categories",
    "targets",
    "links",
    "content",
    "public",
    "galleryFlags",
    "branding",
    "screenshots",
    "badges",
    "galleryproperties",
    "showPricingCalculator",
    "CustomerQnASupport",
    "githubFlavoredMarkdown",
    "$schema",
];

/// `extension.vsomanifest`: everything that is not vsixmanifest metadata.
pub fn vsomanifest(manifest: &Value) -> Result<String> {
    let mut out = Map::new();
    out.insert(
        "manifestVersion".into(),
        manifest
            .get("manifestVersion")
            .cloned()
            .unwrap_or(Value::from(1)),
    );
    out.insert(
        "contributions".into(),
        manifest
            .get("contributions")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
    );
    out.insert(
        "scopes".into(),
        manifest
            .get("scopes")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
    );
    out.insert(
        "contributionTypes".into(),
        manifest
            .get("contributionTypes")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
    );
    for (k, v) in manifest
        .as_object()
        .context("the manifest is not an object")?
    {
        if !out.contains_key(k) && !VSIXMANIFEST_ONLY.contains(&k.as_str()) && !k.starts_with("__")
        {
            out.insert(k.clone(), v.clone());
        }
    }
    let value = Value::Object(out);
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(&value, &mut ser)?;
    Ok(String::from_utf8(buf)?)
}

/// `extension.vsixmanifest`.
pub fn vsixmanifest(manifest: &Value, parts: &[Part]) -> Result<String> {
    let s = |k: &str| manifest[k].as_str().map(str::to_string);
    let id = s("id").context("manifest: id is required")?;
    let publisher = s("publisher").context("manifest: publisher is required")?;
    let version = s("version").context("manifest: version is required")?;
    let name = s("name").context("manifest: name is required")?;
    let description = s("description").unwrap_or_default();
    if description.chars().count() > 200 {
        bail!("manifest: description is longer than 200 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("manifest: id '{id}' may only have letters, digits, '_' and '-'");
    }
    let list = |k: &str| -> String {
        manifest[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let categories = list("categories");
    if categories.is_empty() {
        bail!("manifest: at least one category is required");
    }
    let mut flags: Vec<String> = manifest["galleryFlags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if manifest["public"].as_bool() == Some(true) {
        flags.push("Public".into());
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<PackageManifest Version=\"2.0.0\" xmlns=\"http://schemas.microsoft.com/developer/vsx-schema/2011\" xmlns:d=\"http://schemas.microsoft.com/developer/vsx-schema-design/2011\">\n  <Metadata>\n",
    );
    out.push_str(&format!(
        "    <Identity Language=\"en-US\" Id=\"{}\" Publisher=\"{}\" Version=\"{}\"/>\n",
        xml(&id),
        xml(&publisher),
        xml(&version)
    ));
    out.push_str(&format!("    <DisplayName>{}</DisplayName>\n", xml(&name)));
    out.push_str(&format!(
        "    <Description xml:space=\"preserve\">{}</Description>\n",
        xml(&description)
    ));
    if flags.is_empty() {
        out.push_str("    <GalleryFlags/>\n");
    } else {
        out.push_str(&format!(
            "    <GalleryFlags>{}</GalleryFlags>\n",
            xml(&flags.join(" "))
        ));
    }
    out.push_str(&format!(
        "    <Categories>{}</Categories>\n",
        xml(&categories)
    ));
    let tags = list("tags");
    if !tags.is_empty() {
        out.push_str(&format!("    <Tags>{}</Tags>\n", xml(&tags)));
    }
    let mut props = Vec::new();
    if let Some(links) = manifest["links"].as_object() {
        for (k, v) in links {
            let Some(uri) = v["uri"].as_str().or(v["url"].as_str()) else {
                continue;
            };
            // lodash's capitalize(camelCase(k)), as tfx names the property.
            let lower = k.to_lowercase();
            let key = format!("{}{}", lower[..1].to_uppercase(), &lower[1..]);
            props.push((
                format!("Microsoft.VisualStudio.Services.Links.{key}"),
                uri.to_string(),
            ));
        }
    }
    if let Some(uri) = manifest["repository"]["url"]
        .as_str()
        .or(manifest["repository"]["uri"].as_str())
    {
        props.push((
            "Microsoft.VisualStudio.Services.Links.GitHub".into(),
            uri.to_string(),
        ));
    }
    // tfx writes the colour in lower case.
    if let Some(color) = manifest["branding"]["color"].as_str() {
        props.push((
            "Microsoft.VisualStudio.Services.Branding.Color".into(),
            color.to_lowercase(),
        ));
    }
    if let Some(theme) = manifest["branding"]["theme"].as_str() {
        props.push((
            "Microsoft.VisualStudio.Services.Branding.Theme".into(),
            theme.to_string(),
        ));
    }
    if !props.is_empty() {
        out.push_str("    <Properties>\n");
        for (k, v) in props {
            out.push_str(&format!(
                "      <Property Id=\"{}\" Value=\"{}\"/>\n",
                xml(&k),
                xml(&v)
            ));
        }
        out.push_str("    </Properties>\n");
    }
    let icon = manifest["icons"]["default"].as_str();
    if let Some(icon) = icon {
        out.push_str(&format!("    <Icon>{}</Icon>\n", xml(icon)));
    }
    if let Some((_, license)) = content_files(manifest)
        .into_iter()
        .find(|(kind, _)| kind == "License")
    {
        out.push_str(&format!("    <License>{}</License>\n", xml(&license)));
    }
    out.push_str("  </Metadata>\n  <Dependencies/>\n  <Installation>\n");
    for t in manifest["targets"].as_array().into_iter().flatten() {
        let tid = t["id"].as_str().unwrap_or("");
        match t["version"].as_str() {
            Some(v) => out.push_str(&format!(
                "    <InstallationTarget Id=\"{}\" Version=\"{}\"/>\n",
                xml(tid),
                xml(v)
            )),
            None => out.push_str(&format!("    <InstallationTarget Id=\"{}\"/>\n", xml(tid))),
        }
    }
    out.push_str("  </Installation>\n  <Assets>\n");
    for p in parts.iter().filter(|p| p.addressable) {
        out.push_str(&format!(
            "    <Asset Type=\"{0}\" d:Source=\"File\" Path=\"{0}\" Addressable=\"true\"/>\n",
            xml(&p.name)
        ));
    }
    if let Some(icon) = icon {
        out.push_str(&format!(
            "    <Asset Type=\"Microsoft.VisualStudio.Services.Icons.Default\" d:Source=\"File\" Path=\"{}\" Addressable=\"true\"/>\n",
            xml(icon)
        ));
    }
    for (kind, path) in content_files(manifest) {
        out.push_str(&format!(
            "    <Asset Type=\"Microsoft.VisualStudio.Services.Content.{kind}\" d:Source=\"File\" Path=\"{}\" Addressable=\"true\"/>\n",
            xml(&path)
        ));
    }
    out.push_str("    <Asset Type=\"Microsoft.VisualStudio.Services.Manifest\" d:Source=\"File\" Path=\"extension.vsomanifest\" Addressable=\"true\"/>\n");
    out.push_str("  </Assets>\n</PackageManifest>\n");
    Ok(out)
}

/// Writes `<publisher>.<id>-<version>.vsix` into `out_dir` and returns its path.
pub fn write(staged: &Path, out_dir: &Path) -> Result<PathBuf> {
    let manifest = crate::layout::read_json(&staged.join("vss-extension.json"))?;
    let parts = parts(staged, &manifest)?;
    let vso = vsomanifest(&manifest)?;
    let vsix = vsixmanifest(&manifest, &parts)?;
    let mut contents: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &parts {
        contents.push((p.name.clone(), fs::read(&p.source)?));
    }
    let mut typed = contents.clone();
    typed.push(("extension.vsixmanifest".into(), vsix.clone().into_bytes()));
    typed.push(("extension.vsomanifest".into(), vso.clone().into_bytes()));
    let types = content_types_xml(&typed);

    let file_name = format!(
        "{}.{}-{}.vsix",
        manifest["publisher"].as_str().unwrap_or(""),
        manifest["id"].as_str().unwrap_or(""),
        manifest["version"].as_str().unwrap_or("")
    );
    fs::create_dir_all(out_dir)?;
    let path = out_dir.join(file_name);
    let file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(zip::DateTime::default());
    let dir_opts = SimpleFileOptions::default().last_modified_time(zip::DateTime::default());
    let stored = opts
        .compression_method(zip::CompressionMethod::Stored)
        .compression_level(None);
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("[Content_Types].xml".into(), types.into_bytes()),
        ("extension.vsixmanifest".into(), vsix.into_bytes()),
        ("extension.vsomanifest".into(), vso.into_bytes()),
    ];
    entries.extend(contents);
    let mut dirs = std::collections::BTreeSet::new();
    for (name, bytes) in entries {
        let mut prefix = String::new();
        let segments: Vec<&str> = name.split('/').collect();
        for seg in &segments[..segments.len() - 1] {
            prefix.push_str(seg);
            prefix.push('/');
            if dirs.insert(prefix.clone()) {
                zip.add_directory(prefix.as_str(), dir_opts)?;
            }
        }
        // Packed binaries do not shrink under deflate: stored as they are.
        let method = if name.ends_with(".br") { stored } else { opts };
        zip.start_file(name.as_str(), method)?;
        zip.write_all(&bytes)?;
    }
    zip.finish()?;
    Ok(path)
}
