fn main() -> std::process::ExitCode {
    vsts_task::run("CloudFormationDeleteStack", cloudformationdeletestack::run)
}
