//! S3Upload: files from the agent to S3.
//!
//! Faster than the original, which uploads one file at a time: files go up
//! concurrently (`maxConcurrency` requests in flight, default 32), large
//! files as multipart uploads whose parts go up in parallel, streamed from
//! disk (memory stays bounded whatever the file size). Beyond the original:
//! a custom endpoint, sync (`syncMode`: skip files whose remote copy has the
//! same size and MD5; `deleteRemoved`: delete remote objects under the prefix
//! that are gone locally), a dry run, progress and a Markdown summary. A
//! failed or cancelled multipart upload is aborted: no orphaned parts.

mod bucket;
mod headers;
mod multipart;
mod params;
mod plan;
mod upload;

use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use vsts_aws_common::AwsSetup;
use vsts_s3::human_bytes;
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};

pub use multipart::{MULTIPART_THRESHOLD, Uploads, part_size};
pub use params::{Params, Sse};
pub use plan::{Action, FileItem, Plan};

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line(
        "bucketName",
        255,
        "a bucket name: 63 on S3, 255 on S3-compatible stores",
    ),
    line("sourceFolder", ceiling::PATH, "a folder path"),
    lines("globExpressions", ceiling::TEXT, "a list of patterns"),
    line("targetFolder", 1024, "an S3 key prefix"),
    line("kmsMasterKeyId", ceiling::ARN, "a KMS key ID, alias or ARN"),
    line("customerKey", 128, "a 256-bit key in hexadecimal"),
    line("contentType", 1024, "a media type"),
    line("contentEncoding", 1024, "a content encoding"),
    line("endpointUrl", ceiling::URL, "an endpoint URL"),
    line("maxConcurrency", ceiling::NUMBER, "a number"),
    lines(
        "cacheControl",
        ceiling::TEXT,
        "a list of cache-control rules",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    let uploads = Uploads::default();
    let work = execute(&task, &setup, &params, &uploads);
    tokio::select! {
        result = work => result,
        signal = vsts_task::cancelled() => {
            // The uploads in flight are dropped with `work`; their multipart
            // uploads are aborted here.
            let client = vsts_s3::client(&task, &setup, params.path_style, params.endpoint.as_deref());
            let aborted = uploads.abort_all(&client).await;
            Err(anyhow!("Cancelled ({signal}); {aborted} unfinished multipart upload(s) aborted."))
        }
    }
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params, uploads: &Uploads) -> Result<()> {
    let console = &task.console;
    let client = vsts_s3::client(task, setup, p.path_style, p.endpoint.as_deref());

    let files = plan::find_files(console, p)?;
    if files.is_empty() {
        console.warning(&format!(
            "No files in {} match the patterns of 'globExpressions'; nothing to upload.",
            p.source.display()
        ));
        return Ok(());
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    console.info(&format!(
        "{} files ({}) match in {}",
        files.len(),
        human_bytes(total),
        p.source.display()
    ));

    bucket::ensure_bucket(console, &client, p, &setup.region).await?;
    let plan = plan::decide(console, &client, p, files).await?;

    if p.dry_run {
        console.group("Dry run: nothing is changed");
        for item in &plan.items {
            let verb = match item.action {
                Action::Upload => "would upload",
                Action::Skip => "would skip (identical)",
            };
            console.info(&format!(
                "{verb} {} -> s3://{}/{}",
                item.rel, p.bucket, item.key
            ));
        }
        for key in &plan.deletes {
            console.info(&format!("would delete s3://{}/{key}", p.bucket));
        }
        console.end_group();
        console.info(&format!(
            "Dry run: {} to upload, {} identical, {} to delete.",
            plan.count(Action::Upload),
            plan.count(Action::Skip),
            plan.deletes.len()
        ));
        return Ok(());
    }

    let report = upload::upload_all(task, &client, p, &plan, uploads).await;
    let mut deleted = 0;
    if report.failures.is_empty() && !plan.deletes.is_empty() {
        deleted = bucket::delete_keys(console, &client, &p.bucket, &plan.deletes).await?;
    } else if !plan.deletes.is_empty() {
        console.warning(&format!(
            "{} stale object(s) were not deleted because uploads failed.",
            plan.deletes.len()
        ));
    }
    write_summary(task, p, &plan, &report, deleted);
    if !report.failures.is_empty() {
        let mut msg = format!(
            "{} of {} uploads failed",
            report.failures.len(),
            plan.count(Action::Upload)
        );
        for (key, reason) in report.failures.iter().take(5) {
            let _ = write!(msg, "; s3://{}/{key}: {reason}", p.bucket);
        }
        if report.failures.len() > 5 {
            msg.push_str("; ...");
        }
        bail!(msg);
    }
    Ok(())
}

fn write_summary(task: &Task, p: &Params, plan: &Plan, report: &upload::Report, deleted: usize) {
    let secs = report.elapsed.as_secs_f64().max(0.001);
    let line = format!(
        "Uploaded {} file(s), {} in {:.1} s ({}/s, {:.0} files/s) to s3://{}/{}; {} identical skipped; {} deleted; {} failed.",
        report.uploaded,
        human_bytes(report.bytes),
        secs,
        human_bytes((report.bytes as f64 / secs) as u64),
        report.uploaded as f64 / secs,
        p.bucket,
        p.target,
        plan.count(Action::Skip),
        deleted,
        report.failures.len()
    );
    task.console.info(&line);
    let md = format!(
        "### S3 upload to s3://{}/{}\n\n| | |\n|---|---|\n| files uploaded | {} |\n| bytes | {} |\n| identical, skipped | {} |\n| deleted | {} |\n| failed | {} |\n| time | {:.1} s |\n| throughput | {}/s, {:.0} files/s |\n",
        p.bucket,
        p.target,
        report.uploaded,
        human_bytes(report.bytes),
        plan.count(Action::Skip),
        deleted,
        report.failures.len(),
        secs,
        human_bytes((report.bytes as f64 / secs) as u64),
        report.uploaded as f64 / secs,
    );
    task.upload_summary("s3upload", &md);
}
