fn main() -> std::process::ExitCode {
    vsts_task::run("AWSShellScript", awsshellscript::run)
}
