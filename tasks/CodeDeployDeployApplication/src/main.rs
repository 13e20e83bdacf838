fn main() -> std::process::ExitCode {
    vsts_task::run(
        "CodeDeployDeployApplication",
        codedeploydeployapplication::run,
    )
}
