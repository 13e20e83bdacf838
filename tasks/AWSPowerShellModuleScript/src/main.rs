fn main() -> std::process::ExitCode {
    vsts_task::run("AWSPowerShellModuleScript", awspowershellmodulescript::run)
}
