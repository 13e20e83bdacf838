fn main() -> std::process::ExitCode {
    vsts_task::run("LambdaInvokeFunction", lambdainvokefunction::run)
}
