fn main() -> std::process::ExitCode {
    vsts_task::run(
        "BeanstalkCreateApplicationVersion",
        beanstalkcreateapplicationversion::run,
    )
}
