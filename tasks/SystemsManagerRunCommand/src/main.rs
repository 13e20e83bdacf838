fn main() -> std::process::ExitCode {
    vsts_task::run("SystemsManagerRunCommand", systemsmanagerruncommand::run)
}
