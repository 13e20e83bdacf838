fn main() -> std::process::ExitCode {
    vsts_task::run("ConfigureAWSCredentials", configureawscredentials::run)
}
