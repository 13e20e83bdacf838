//! Deterministic zip archives of a folder: the same files give the same
//! bytes whenever and wherever they are zipped (entries sorted by their
//! `/`-separated path, fixed timestamps, modes 644, or 755 for
//! executables), so a code hash (Lambda's CodeSha256) or an ETag changes
//! only when the content does. LambdaDeployFunction, LambdaPublishLayerVersion
//! and the CodeDeploy and Beanstalk bundles zip through this.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The files under `dir` as (archive path with `/`, file on disk), sorted.
/// Symbolic links are followed; folders with no files add nothing.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)?
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, entry.path().to_path_buf()));
        }
    }
    files.sort();
    Ok(files)
}

/// Zips `files` (from `files`, or chosen by the caller) into `out`.
/// `input` names the task input the folder came from, for the error when
/// there is nothing to zip.
pub fn zip_files<W: Write + Seek>(
    files: &[(String, PathBuf)],
    out: W,
    input: &str,
    dir: &Path,
) -> Result<W> {
    if files.is_empty() {
        bail!("Input '{input}': {} has no files to zip.", dir.display());
    }
    let mut zip = zip::ZipWriter::new(out);
    for (rel, path) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if executable(path)? { 0o755 } else { 0o644 })
            .large_file(std::fs::metadata(path)?.len() >= u32::MAX as u64);
        zip.start_file(rel.as_str(), opts)?;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        std::io::copy(&mut f, &mut zip).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(zip.finish()?)
}

#[cfg(unix)]
fn executable(path: &Path) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(_: &Path) -> Result<bool> {
    Ok(false)
}

/// The zip of a folder in memory (Lambda code and layers: at most 50 MiB).
pub fn zip_folder(dir: &Path, input: &str) -> Result<Vec<u8>> {
    Ok(zip_files(&files(dir)?, std::io::Cursor::new(Vec::new()), input, dir)?.into_inner())
}

/// The zip of a folder written to `dest` (deployment bundles of any size);
/// a partly written file is removed on failure.
pub fn zip_folder_to_file(dir: &Path, input: &str, dest: &Path) -> Result<u64> {
    let result = (|| {
        let file =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut file = zip_files(&files(dir)?, std::io::BufWriter::new(file), input, dir)?;
        file.flush()?;
        Ok(std::fs::metadata(dest)?.len())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// Lambda's CodeSha256 of an archive: base64 of its SHA-256.
pub fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// Lambda's CodeSha256 of an archive on disk, read in 256 KiB pieces.
pub fn file_code_sha256(path: &Path) -> Result<String> {
    use base64::Engine;
    use sha2::Digest;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    }

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bundle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("index.py"), b"def handler(e, c): return e\n").unwrap();
        std::fs::write(dir.join("lib/util.py"), b"X = 1\n").unwrap();
        dir
    }

    #[test]
    fn code_sha256_is_lambdas_format() {
        let expected = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
        assert_eq!(code_sha256(b"abc"), expected);
        let path = std::env::temp_dir().join(format!("bundle-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(file_code_sha256(&path).unwrap(), expected);
    }

    #[test]
    fn folder_zips_are_deterministic() {
        let dir = folder("det");
        let a = zip_folder(&dir, "localFolder").unwrap();
        // A later modification time must not change the bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.join("lib/util.py"), b"X = 1\n").unwrap();
        let b = zip_folder(&dir, "localFolder").unwrap();
        assert_eq!(sha(&a), sha(&b));
        std::fs::write(dir.join("lib/util.py"), b"X = 2\n").unwrap();
        assert_ne!(sha(&a), sha(&zip_folder(&dir, "localFolder").unwrap()));
    }

    #[test]
    fn a_file_zip_has_the_same_bytes_and_sorted_slash_paths() {
        let dir = folder("file");
        let dest = dir.with_extension("zip");
        let size = zip_folder_to_file(&dir, "revisionBundle", &dest).unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(bytes, zip_folder(&dir, "revisionBundle").unwrap());
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names, ["index.py", "lib/util.py"]);
    }

    #[test]
    fn an_empty_folder_names_the_input_and_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("bundle-empty-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let dest = dir.with_extension("zip");
        let err = zip_folder_to_file(&dir, "revisionBundle", &dest).unwrap_err();
        assert!(
            format!("{err}").starts_with("Input 'revisionBundle':"),
            "{err}"
        );
        assert!(!dest.exists());
    }
}
