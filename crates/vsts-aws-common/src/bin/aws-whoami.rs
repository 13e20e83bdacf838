//! Diagnostic: resolves credentials and region exactly as every task does,
//! then asks STS who they are. `cargo xtask run`-able like a task; the
//! integration tests run it against moto.

use std::process::ExitCode;

use vsts_aws_common::SdkResultExt;

fn main() -> ExitCode {
    vsts_task::run("AwsWhoAmI", |task| async move {
        let setup = vsts_aws_common::configure(&task).await?;
        let sts = aws_sdk_sts::Client::new(&setup.config);
        let me = sts
            .get_caller_identity()
            .send()
            .await
            .sdk_context(|| "sts:GetCallerIdentity failed".to_string())?;
        task.console.info(&format!(
            "Caller identity: {} (account {})",
            me.arn().unwrap_or("?"),
            me.account().unwrap_or("?")
        ));
        Ok(())
    })
}
