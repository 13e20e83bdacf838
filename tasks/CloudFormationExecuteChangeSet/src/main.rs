fn main() -> std::process::ExitCode {
    vsts_task::run(
        "CloudFormationExecuteChangeSet",
        cloudformationexecutechangeset::run,
    )
}
