//! Publishing: pointing an alias at the published version.

use anyhow::{Result, anyhow, bail};
use vsts_aws_common::sdk_error_text;
use vsts_task::Console;

/// Creates `alias` at `version`, or moves it there.
pub(crate) async fn point_alias(
    console: &Console,
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<()> {
    let exists = match lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) if vsts_aws_common::is_not_found(&e) => false,
        Err(e) => bail!("Reading alias '{alias}' failed: {}", sdk_error_text(&e)),
    };
    if exists {
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "Pointing alias '{alias}' at version {version} failed: {}",
                    sdk_error_text(&e)
                )
            })?;
    } else {
        lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|e| anyhow!("Creating alias '{alias}' failed: {}", sdk_error_text(&e)))?;
    }
    console.info(&format!("Alias {alias} -> version {version}"));
    Ok(())
}
