fn main() -> std::process::ExitCode {
    vsts_task::run(
        "SecretsManagerCreateOrUpdateSecret",
        secretsmanagercreateorupdatesecret::run,
    )
}
