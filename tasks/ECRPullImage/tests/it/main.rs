//! ECRPullImage against moto and a real registry driven by a real podman
//! (`test_support::registry`): an image pushed there first is pulled by
//! tag and by digest, and found in the client's storage afterwards.

use std::path::Path;

use test_support::registry::{MOTO_PASSWORD, Podman, Registry, ecr_front};
use test_support::{TaskEnv, assert_no_leaks, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecrpullimage"))
}

#[test]
fn pulled_by_tag_and_by_digest() {
    let registry = Registry::start();
    let podman = Podman::new(&registry);
    let front = ecr_front(&test_support::moto(), &registry, None);
    let host = &registry.host;
    let repo = format!("team/{}", unique("pull").to_lowercase());
    // Put an image in the registry, then forget it locally.
    let source = format!("{host}/{repo}:v7");
    podman.image(&source, "seven");
    let auth = [
        "login",
        "--username",
        "AWS",
        "--password",
        MOTO_PASSWORD,
        host,
    ];
    podman.run(&auth);
    podman.run(&["push", &source]);
    podman.run(&["logout", host]);
    podman.run(&["rmi", "-f", &source]);
    assert!(!podman.has(&source));
    let digest = registry.digest(&repo, "v7").unwrap();
    let env = podman
        .env
        .iter()
        .fold(
            TaskEnv::moto().set("AWS_ENDPOINT_URL", &front.url),
            |e, (k, v)| e.set(k, v),
        )
        .input("repository", &repo)
        .input("outputVariable", "pulledImage");

    let run = env
        .clone()
        .input("imageSource", "imagetag")
        .input("imageTag", "v7")
        .run(bin());
    run.assert_succeeded();
    assert_no_leaks(&run, &[MOTO_PASSWORD]);
    assert_eq!(run.variable("pulledImage"), Some(source.clone()));
    assert!(podman.has(&source), "{source} not pulled");
    assert!(!podman.logged_in(host));

    podman.run(&["rmi", "-f", &source]);
    let run = env
        .clone()
        .input("imageSource", "imagedigest")
        .input("imageDigest", &digest)
        .run(bin());
    run.assert_succeeded();
    let by_digest = format!("{host}/{repo}@{digest}");
    assert_eq!(run.variable("pulledImage"), Some(by_digest.clone()));
    assert!(podman.has(&by_digest), "{by_digest} not pulled");

    // A tag the registry does not have: the client's refusal, named.
    let run = env.input("imageTag", "v8").run(bin());
    run.assert_failed_with(&format!(
        "Pulling {host}/{repo}:v8 failed: podman pull exited with code"
    ));
    assert!(!podman.logged_in(host), "a failed pull left the login");
}
