//! LambdaPublishLayerVersion against moto, read back with GetLayerVersion,
//! ListLayerVersions and (for the staged archive) ListObjectsV2 and
//! ListMultipartUploads.

use std::io::Write;
use std::path::{Path, PathBuf};

use test_support::s3::{keys, s3};
use test_support::{TaskEnv, block_on, sdk_config, unique};

fn folder(files: &[(&str, &[u8])]) -> PathBuf {
    test_support::s3::folder("layer", files)
}

fn bucket() -> String {
    test_support::s3::bucket("layers")
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambdapublishlayerversion"))
}

fn lambda() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk_config())
}

fn versions(layer: &str) -> Vec<i64> {
    let mut v: Vec<i64> = block_on(lambda().list_layer_versions().layer_name(layer).send())
        .map(|o| o.layer_versions().iter().map(|v| v.version()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn get(
    layer: &str,
    version: i64,
) -> aws_sdk_lambda::operation::get_layer_version::GetLayerVersionOutput {
    block_on(
        lambda()
            .get_layer_version()
            .layer_name(layer)
            .version_number(version)
            .send(),
    )
    .unwrap()
}

fn from_folder(layer: &str, dir: &Path) -> TaskEnv {
    TaskEnv::moto()
        .input("layerName", layer)
        .input("codeLocation", "localfolder")
        .input("localFolder", dir.to_str().unwrap())
}

#[test]
fn publishes_a_folder_with_its_settings_and_outputs() {
    let layer = unique("deps");
    let dir = folder(&[
        ("python/deps/__init__.py", b"VERSION = 1\n"),
        ("python/deps/util.py", b"def f():\n    return 1\n"),
    ]);
    let run = from_folder(&layer, &dir)
        .input("description", "deps for build 42")
        .input("compatibleRuntimes", "python3.12\npython3.13")
        .input("compatibleArchitectures", "arm64,x86_64")
        .input("licenseInfo", "MIT")
        .input("outputVariable", "depsLayer")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(versions(&layer), [1]);
    let v = get(&layer, 1);
    assert_eq!(v.description(), Some("deps for build 42"));
    assert_eq!(v.license_info(), Some("MIT"));
    let mut runtimes: Vec<&str> = v.compatible_runtimes().iter().map(|r| r.as_str()).collect();
    runtimes.sort();
    assert_eq!(runtimes, ["python3.12", "python3.13"]);
    let mut archs: Vec<&str> = v
        .compatible_architectures()
        .iter()
        .map(|a| a.as_str())
        .collect();
    archs.sort();
    assert_eq!(archs, ["arm64", "x86_64"]);
    let arn = v.layer_version_arn().unwrap();
    assert_eq!(run.variable("layerVersionArn").as_deref(), Some(arn));
    assert_eq!(run.variable("depsLayer").as_deref(), Some(arn));
    assert_eq!(run.variable("layerVersion").as_deref(), Some("1"));
    // The temporary zip is gone from the agent's temp folder.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("layer-{layer}-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_same_files_give_the_same_code_and_skip_if_unchanged_reuses_it() {
    let layer = unique("same");
    let dir = folder(&[("nodejs/node_modules/x/index.js", b"module.exports = 1;\n")]);
    from_folder(&layer, &dir).run(bin()).assert_succeeded();
    // Touch the file: timestamps must not matter.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(
        dir.join("nodejs/node_modules/x/index.js"),
        b"module.exports = 1;\n",
    )
    .unwrap();
    from_folder(&layer, &dir).run(bin()).assert_succeeded();
    assert_eq!(
        versions(&layer),
        [1, 2],
        "without skipIfUnchanged, a new version"
    );
    let sha = |v| {
        get(&layer, v)
            .content()
            .and_then(|c| c.code_sha256())
            .unwrap()
            .to_string()
    };
    assert_eq!(sha(1), sha(2), "the same files, the same bytes");

    let run = from_folder(&layer, &dir)
        .input("skipIfUnchanged", "true")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(versions(&layer), [1, 2], "nothing published");
    assert_eq!(run.variable("layerVersion").as_deref(), Some("2"));
    assert_eq!(
        run.variable("layerVersionArn").as_deref(),
        get(&layer, 2).layer_version_arn()
    );

    // A new description is a change, and so is new content.
    from_folder(&layer, &dir)
        .input("skipIfUnchanged", "true")
        .input("description", "now described")
        .run(bin())
        .assert_succeeded();
    assert_eq!(versions(&layer), [1, 2, 3]);
    std::fs::write(
        dir.join("nodejs/node_modules/x/index.js"),
        b"module.exports = 2;\n",
    )
    .unwrap();
    from_folder(&layer, &dir)
        .input("skipIfUnchanged", "true")
        .input("description", "now described")
        .run(bin())
        .assert_succeeded();
    assert_eq!(versions(&layer), [1, 2, 3, 4]);
    assert_ne!(sha(4), sha(3));
}

#[test]
fn large_archives_go_through_s3_and_the_staged_copy_is_deleted() {
    // 20 MiB that do not compress: the archive goes up as a multipart upload.
    let mut noise = vec![0u8; 20 * 1024 * 1024];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let dir = folder(&[("bin/tool", &noise), ("README", b"tool\n")]);
    let bucket = bucket();
    let layer = unique("big");
    let run = from_folder(&layer, &dir)
        .input("s3UploadBucket", &bucket)
        .input("s3UploadPrefix", "staging/layers")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout
            .contains(&format!("to s3://{bucket}/staging/layers/{layer}-")),
        "{}",
        run.stdout
    );
    let v = get(&layer, 1);
    let size = v.content().unwrap().code_size();
    assert!(
        size > 20 * 1024 * 1024,
        "Lambda read the whole archive: {size}"
    );
    assert!(
        keys(&bucket).is_empty(),
        "staged copy left: {:?}",
        keys(&bucket)
    );
    let open = block_on(s3().list_multipart_uploads().bucket(&bucket).send()).unwrap();
    assert!(open.uploads().is_empty());

    // The same folder sent directly has the same CodeSha256.
    let direct = unique("direct");
    from_folder(&direct, &dir).run(bin()).assert_succeeded();
    assert_eq!(
        get(&direct, 1).content().unwrap().code_sha256(),
        v.content().unwrap().code_sha256()
    );
}

#[test]
fn a_zip_file_or_an_s3_object() {
    let zip_path = std::env::temp_dir().join(format!("{}.zip", unique("layer")));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    zip.start_file("python/m.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"M = 1\n").unwrap();
    zip.finish().unwrap();
    let layer = unique("zip");
    TaskEnv::moto()
        .input("layerName", &layer)
        .input("codeLocation", "localfile")
        .input("localZipFile", zip_path.to_str().unwrap())
        .run(bin())
        .assert_succeeded();
    let bytes = std::fs::read(&zip_path).unwrap();
    let from_file = get(&layer, 1);
    assert_eq!(from_file.content().unwrap().code_size(), bytes.len() as i64);

    let bucket = bucket();
    block_on(
        s3().put_object()
            .bucket(&bucket)
            .key("layers/m.zip")
            .body(bytes.into())
            .send(),
    )
    .unwrap();
    let run = TaskEnv::moto()
        .input("layerName", &layer)
        .input("codeLocation", "s3object")
        .input("s3Bucket", &bucket)
        .input("s3ObjectKey", "layers/m.zip")
        .run(bin());
    run.assert_succeeded();
    assert_eq!(
        get(&layer, 2).content().unwrap().code_sha256(),
        from_file.content().unwrap().code_sha256()
    );
    assert_eq!(keys(&bucket), ["layers/m.zip"], "the user's object is kept");
}

#[test]
fn bad_inputs_are_named_and_nothing_is_published() {
    let dir = folder(&[("python/m.py", b"M = 1\n")]);
    let layer = unique("bad");
    let cases: Vec<(TaskEnv, &str)> = vec![
        (
            from_folder("my layer", &dir),
            "Input 'layerName': 'my layer' is not a layer name",
        ),
        (
            from_folder(&layer, &dir).input("compatibleArchitectures", "x86_64,amd64"),
            "Input 'compatibleArchitectures': 'amd64' is not an architecture; allowed: x86_64, arm64.",
        ),
        (
            from_folder(&layer, &dir).input("compatibleRuntimes", "python 3"),
            "Input 'compatibleRuntimes': 'python 3' is not a runtime identifier",
        ),
        (
            from_folder(&layer, &dir).input("codeLocation", "zip"),
            "codeLocation",
        ),
        (
            TaskEnv::moto()
                .input("layerName", &layer)
                .input("codeLocation", "localfile")
                .input("localZipFile", dir.join("python/m.py").to_str().unwrap()),
            "Input 'localZipFile':",
        ),
        (
            TaskEnv::moto()
                .input("layerName", &layer)
                .input("codeLocation", "s3object")
                .input("s3Bucket", "b"),
            "Input required: s3ObjectKey (codeLocation is 's3object')",
        ),
        (from_folder(&layer, &folder(&[])), "Input 'localFolder':"),
        // The upload bucket does not exist: the upload fails, named.
        (
            from_folder(&layer, &dir).input("s3UploadBucket", &unique("missing").to_lowercase()),
            "Uploading ",
        ),
    ];
    for (env, needle) in cases {
        env.run(bin()).assert_failed_with(needle);
    }
    assert!(versions(&layer).is_empty(), "nothing was published");
}
