fn main() -> std::process::ExitCode {
    vsts_task::run("ECRPushImage", ecrpushimage::run)
}
