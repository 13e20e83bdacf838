fn main() -> std::process::ExitCode {
    vsts_task::run("SendMessage", sendmessage::run)
}
