fn main() -> std::process::ExitCode {
    vsts_task::run("LambdaDeployFunction", lambdadeployfunction::run)
}
