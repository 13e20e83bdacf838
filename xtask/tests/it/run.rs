//! `cargo xtask run`'s path end to end: a built task staged as the agent
//! would see it, run through the launcher with node, against moto.

use xtask::{build, layout, run_task, tools};

use crate::root;

#[test]
fn a_task_runs_through_the_launcher_with_agent_style_inputs() {
    let moto = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT: run `cargo xtask test`");
    let root = root();
    let task = layout::tasks(&root)
        .unwrap()
        .into_iter()
        .find(|t| t.name == "SecretsManagerGetSecret")
        .unwrap();
    let binaries = build::build(&root, std::slice::from_ref(&task), &[None], "dev").unwrap();
    let dir = crate::temp("run").join(&task.name);
    tools::stage_task(&root, &task, &binaries, &dir, xtask::layout::Packing::Plain).unwrap();

    let args = run_task::RunArgs::parse(&[
        task.name.clone(),
        "--input".into(),
        "secretIdOrName=  not-there  ".into(),
        "--input".into(),
        "variableName=v".into(),
        "--connection".into(),
        "username=testing".into(),
        "--connection".into(),
        "password=local-run-secret".into(),
        "--connection-data".into(),
        format!("endpointUrl={moto}"),
        "--variable".into(),
        "AWS.Region=eu-west-1".into(),
    ])
    .unwrap();
    let json = layout::read_json(&dir.join("task.json")).unwrap();
    let env = run_task::agent_env(&json, &args).unwrap();
    let out = std::process::Command::new("node")
        .arg(dir.join("run.js"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Inputs were trimmed, the connection and its endpoint were used, and
    // the region came from the pipeline variable.
    assert!(
        text.contains("Secret 'not-there' was not found in region eu-west-1"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "AWS credentials: service connection {}; region eu-west-1 (pipeline variable AWS.Region); endpoint {moto} (service connection)",
        run_task::LOCAL_CONNECTION
    )), "{text}");
    assert!(
        text.starts_with("##vso[task.setsecret]local-run-secret\n"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}
