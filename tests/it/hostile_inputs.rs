//! Every task, every input, hostile values: over its limit, control
//! characters, empty, and text that looks like a broken encoding.
//!
//! Each task runs in process (its library's `run`), against moto behind a
//! recording proxy. For an input with a declared limit, a value over it or
//! with a control character must fail naming the input, before any request
//! leaves the task (so nothing is created or changed in moto). For every
//! input and value: no panic, and a failure is a clear error, not an
//! internal one.

use std::path::{Path, PathBuf};

use test_support::{TaskEnv, unique};
use vsts_task::limits::{Limit, Shape};

use crate::{Subject, declared_inputs, run_in_process, subjects};

fn hostile_values(limit: Option<&Limit>) -> Vec<(&'static str, String, bool)> {
    // (label, value, must fail naming the input)
    let over = limit.map_or(100_000, |l| l.max + 1);
    let control = match limit.map(|l| l.shape) {
        Some(Shape::Lines) => "a\u{0}b",
        _ => "a\u{1}b\nc",
    };
    let mut values = vec![
        ("over its limit", "x".repeat(over), limit.is_some()),
        (
            "with a control character",
            control.to_string(),
            limit.is_some(),
        ),
        ("empty", String::new(), false),
        (
            "mis-decoded text",
            "Ã©Ã¼â‚¬ \u{FFFD}\u{FFFD} ∂".to_string(),
            false,
        ),
    ];
    if limit.is_some_and(|l| l.max < 100_000) {
        // The value that made the SDK panic before inputs had limits.
        values.push(("100 KB long", "x".repeat(100_000), true));
    }
    values
}

#[test]
fn every_input_of_every_task_survives_hostile_values() {
    let proxy = test_support::recording_proxy(&test_support::moto());
    // The SDK reads its endpoint override from the process environment, not
    // from the task's: point it at the recording proxy before any task runs.
    // SAFETY: this is the only test of this binary that reads the variable,
    // and no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &proxy.url)
    };
    let dir: PathBuf = std::env::temp_dir().join(unique("hostile"));
    std::fs::create_dir_all(&dir).unwrap();
    // One thread per task: each run waits on moto, not on the CPU.
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = subjects()
            .into_iter()
            .map(|s| {
                let (proxy, dir) = (&proxy, &dir);
                scope.spawn(move || check_subject(&s, proxy, dir))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs: usize = results.iter().map(|(n, _)| n).sum();
    let problems: Vec<String> = results.into_iter().flat_map(|(_, p)| p).collect();
    assert!(runs > 300, "{runs} runs");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Runs one task with each hostile value in each input; returns the number
/// of runs and the problems found.
fn check_subject(
    s: &Subject,
    proxy: &test_support::HttpServer,
    dir: &Path,
) -> (usize, Vec<String>) {
    let mut limits: Vec<&Limit> = s.limits.iter().collect();
    limits.extend(vsts_aws_common::COMMON_INPUT_LIMITS);
    let mut problems = Vec::new();
    let mut runs = 0;
    for (input, free) in declared_inputs(s.name) {
        let limit = limits.iter().copied().find(|l| l.input == input);
        if free && limit.is_none() {
            problems.push(format!("{}: input '{input}' has no declared limit", s.name));
        }
        for (label, value, must_fail) in hostile_values(limit) {
            // No retries (a refused request fails at once), and a region to
            // fall back on when the hostile value empties regionName.
            let mut env = TaskEnv::moto()
                .set("AWS_ENDPOINT_URL", &proxy.url)
                .set("AWS_MAX_ATTEMPTS", "1")
                .variable("AWS.Region", test_support::REGION);
            for (k, v) in (s.base)(dir) {
                env = env.input(k, &v);
            }
            let env = env.input(&input, &value);
            // A key of its own marks every request of this run.
            let key = format!("AKID{}X{runs}", s.name.to_uppercase());
            let out = run_in_process(s, &env.set("AWS_ACCESS_KEY_ID", &key));
            runs += 1;
            let what = format!("{} with '{input}' {label}", s.name);
            let message = match &out.result {
                Err(panic) => {
                    problems.push(format!("{what}: panicked: {panic}"));
                    continue;
                }
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
            };
            if let Some(m) = &message
                && (m.contains("internal error") || m.contains("panicked"))
            {
                problems.push(format!("{what}: an internal error: {m}"));
            }
            if must_fail {
                let named = format!("Input '{input}'");
                match &message {
                    Some(m) if m.contains(&named) => {}
                    Some(m) => {
                        problems.push(format!("{what}: the error does not name the input: {m}"))
                    }
                    None => problems.push(format!("{what}: succeeded\n{}", out.log)),
                }
                let credential = format!("Credential={key}/");
                let sent = proxy
                    .requests()
                    .iter()
                    .filter(|r| {
                        r.header("authorization")
                            .is_some_and(|a| a.contains(&credential))
                    })
                    .count();
                if sent > 0 {
                    problems.push(format!(
                        "{what}: {sent} request(s) reached AWS before the input was refused"
                    ));
                }
            }
        }
    }
    // The base inputs take a run as far as AWS: unless some runs of this
    // task reached the proxy, "nothing was sent" above proves nothing.
    let marker = format!("Credential=AKID{}X", s.name.to_uppercase());
    let reached = proxy
        .requests()
        .iter()
        .filter(|r| {
            r.header("authorization")
                .is_some_and(|a| a.contains(&marker))
        })
        .count();
    if reached == 0 {
        problems.push(format!("{}: no run reached AWS", s.name));
    }
    (runs, problems)
}
