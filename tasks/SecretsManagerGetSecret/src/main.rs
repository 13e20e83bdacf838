fn main() -> std::process::ExitCode {
    vsts_task::run("SecretsManagerGetSecret", secretsmanagergetsecret::run)
}
