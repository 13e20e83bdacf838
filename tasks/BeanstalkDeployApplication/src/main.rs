fn main() -> std::process::ExitCode {
    vsts_task::run(
        "BeanstalkDeployApplication",
        beanstalkdeployapplication::run,
    )
}
