fn main() -> std::process::ExitCode {
    vsts_task::run("ECRPullImage", ecrpullimage::run)
}
