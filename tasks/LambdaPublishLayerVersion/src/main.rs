fn main() -> std::process::ExitCode {
    vsts_task::run("LambdaPublishLayerVersion", lambdapublishlayerversion::run)
}
