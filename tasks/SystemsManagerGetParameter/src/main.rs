fn main() -> std::process::ExitCode {
    vsts_task::run(
        "SystemsManagerGetParameter",
        systemsmanagergetparameter::run,
    )
}
