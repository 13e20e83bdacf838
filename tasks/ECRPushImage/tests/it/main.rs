//! ECRPushImage against moto (repositories, authorization tokens) and a
//! real registry driven by a real podman (`test_support::registry`): what
//! landed in the registry is read back from it, tag by tag, with its
//! manifest digest.

use std::path::Path;

use test_support::registry::{Podman, Registry, ecr_front};
use test_support::{HttpServer, TaskEnv, TaskRun, assert_no_leaks, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecrpushimage"))
}

fn ecr() -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&sdk_config())
}

fn create_repository(name: &str) {
    block_on(ecr().create_repository().repository_name(name).send()).unwrap();
}

fn repository_exists(name: &str) -> bool {
    block_on(ecr().describe_repositories().repository_names(name).send()).is_ok()
}

struct Setup {
    registry: Registry,
    podman: Podman,
    front: HttpServer,
}

impl Setup {
    fn new(password: Option<&str>) -> Self {
        let registry = Registry::start();
        let podman = Podman::new(&registry);
        let front = ecr_front(&test_support::moto(), &registry, password);
        Setup {
            registry,
            podman,
            front,
        }
    }

    fn env(&self) -> TaskEnv {
        let env = TaskEnv::moto().set("AWS_ENDPOINT_URL", &self.front.url);
        self.podman.env.iter().fold(env, |e, (k, v)| e.set(k, v))
    }
}

fn no_leaks(run: &TaskRun) {
    let token = test_support::registry::moto_token();
    assert_no_leaks(run, &[test_support::registry::MOTO_PASSWORD, &token]);
}

#[test]
fn an_image_by_name_lands_under_every_tag_with_its_digest() {
    let s = Setup::new(None);
    let repo = unique("web").to_lowercase();
    create_repository(&repo);
    s.podman.image("localhost/app:1.0", "build 42");
    let run = s
        .env()
        .input("imageSource", "imagename")
        .input("sourceImageName", "localhost/app")
        .input("sourceImageTag", "1.0")
        .input("repositoryName", &repo)
        .input("pushTag", "v42, latest\nv42\nstable")
        .input("outputVariable", "pushedImage")
        .run(bin());
    run.assert_succeeded();
    no_leaks(&run);
    let host = &s.registry.host;
    assert_eq!(s.registry.tags(&repo), ["latest", "stable", "v42"]);
    let digest = s
        .registry
        .digest(&repo, "v42")
        .expect("v42 is in the registry");
    for tag in ["latest", "stable"] {
        assert_eq!(
            s.registry.digest(&repo, tag).as_deref(),
            Some(digest.as_str())
        );
    }
    assert_eq!(
        run.variable("pushedImage"),
        Some(format!("{host}/{repo}:v42"))
    );
    assert_eq!(run.variable("imageDigest"), Some(digest.clone()));
    assert_eq!(
        run.variable("imageUri"),
        Some(format!("{host}/{repo}@{digest}"))
    );
    // The password went on standard input and the login is gone.
    assert!(
        run.stdout.contains("(password on standard input)"),
        "{}",
        run.stdout
    );
    assert!(!s.podman.logged_in(host), "still logged in to {host}");
    // The local image stays without removeDockerImage.
    assert!(s.podman.has("localhost/app:1.0"));
}

#[test]
fn an_image_by_id_into_a_created_repository_and_removed_after() {
    let s = Setup::new(None);
    let repo = format!("team/{}", unique("API").to_lowercase());
    let id = s.podman.image("localhost/api:latest", "api");
    let run = s
        .env()
        .input("imageSource", "imageid")
        .input("sourceImageId", &id)
        .input("repositoryName", &repo.to_uppercase())
        .input("forceDockerNamingConventions", "true")
        .input("autoCreateRepository", "true")
        .input("removeDockerImage", "true")
        .run(bin());
    run.assert_succeeded();
    // The original's naming rules drop the '/' too.
    let named = repo.replace('/', "");
    assert!(repository_exists(&named), "{named} not created");
    assert_eq!(s.registry.tags(&named), ["latest"]);
    assert!(s.registry.digest(&named, "latest").is_some());
    assert!(!s.podman.has(&id), "the local image was not removed");
}

#[test]
fn what_is_missing_is_named_and_nothing_is_pushed() {
    let s = Setup::new(None);
    let repo = unique("missing").to_lowercase();
    s.podman.image("localhost/there:latest", "x");
    // No such repository, without autoCreateRepository.
    let run = s
        .env()
        .input("sourceImageName", "localhost/there")
        .input("repositoryName", &repo)
        .run(bin());
    run.assert_failed_with(&format!(
        "Repository '{repo}' does not exist in this registry"
    ));
    assert!(!repository_exists(&repo));
    assert!(s.registry.tags(&repo).is_empty());
    // No such local image.
    create_repository(&repo);
    let run = s
        .env()
        .input("sourceImageName", "localhost/nowhere")
        .input("repositoryName", &repo)
        .run(bin());
    run.assert_failed_with("No local image 'localhost/nowhere:latest'");
    // No container client at all.
    let run = s
        .env()
        .set("PATH", &s.podman.dir.join("empty").display().to_string())
        .input("sourceImageName", "localhost/there")
        .input("repositoryName", &repo)
        .run(bin());
    run.assert_failed_with("No container client: neither docker nor podman is on the agent's PATH");
    assert!(s.registry.tags(&repo).is_empty());
}

#[test]
fn a_denied_login_fails_saying_so_and_leaks_nothing() {
    let s = Setup::new(Some("not-the-password"));
    let repo = unique("denied").to_lowercase();
    create_repository(&repo);
    s.podman.image("localhost/denied:latest", "x");
    let run = s
        .env()
        .input("sourceImageName", "localhost/denied")
        .input("repositoryName", &repo)
        .run(bin());
    run.assert_failed_with(&format!(
        "The registry {} denied the login",
        s.registry.host
    ));
    assert_no_leaks(&run, &["not-the-password"]);
    assert!(s.registry.tags(&repo).is_empty());
}
