fn main() -> std::process::ExitCode {
    vsts_task::run("S3Upload", s3upload::run)
}
