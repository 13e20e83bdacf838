fn main() -> std::process::ExitCode {
    vsts_task::run(
        "SystemsManagerSetParameter",
        systemsmanagersetparameter::run,
    )
}
