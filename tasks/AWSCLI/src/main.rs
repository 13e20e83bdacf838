fn main() -> std::process::ExitCode {
    vsts_task::run("AWSCLI", awscli::run)
}
