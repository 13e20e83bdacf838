fn main() -> std::process::ExitCode {
    vsts_task::run("S3Download", s3download::run)
}
