fn main() -> std::process::ExitCode {
    vsts_task::run("LambdaNETCoreDeploy", lambdanetcoredeploy::run)
}
