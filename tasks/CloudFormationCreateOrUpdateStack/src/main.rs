fn main() -> std::process::ExitCode {
    vsts_task::run(
        "CloudFormationCreateOrUpdateStack",
        cloudformationcreateorupdatestack::run,
    )
}
