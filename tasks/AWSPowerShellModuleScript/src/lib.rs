//! AWSPowerShellModuleScript: runs a PowerShell script file or an inline
//! script with the pipeline's AWS credentials and region, for the AWS Tools
//! for PowerShell, as the AWS Toolkit task of the same name does.
//!
//! - PowerShell 7 (`pwsh`) on any OS; on Windows, Windows PowerShell
//!   (`powershell.exe`) when there is no `pwsh`. The original ran only on
//!   Windows, with Windows PowerShell.
//! - The script runs from a wrapper, as the original's does: it sets
//!   `$ErrorActionPreference`, imports the AWS Tools module that is
//!   installed (the modular `AWS.Tools.*`, `AWSPowerShell.NetCore` or
//!   `AWSPowerShell`; when none is, it installs the one for this PowerShell
//!   for the current user, as the original did), sets the agent's proxy
//!   with `Set-AWSProxy`, dot-sources the script with `arguments`, and
//!   exits with `$LASTEXITCODE` unless `ignoreLASTEXITCODE`.
//! - The environment is AWSShellScript's: the credentials of the chain
//!   (registered as secrets first) in `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, which the AWS Tools
//!   read, the region in `AWS_REGION` (and `AWS_DEFAULT_REGION`), the
//!   agent's proxy, and none of the agent's secret-bearing variables.
//!   Nothing secret is written to the wrapper: the proxy's credentials are
//!   read from the environment by the wrapper itself.
//! - A non-zero exit code fails the task; `failOnStderr` fails it on any
//!   standard error output. Cancelling ends PowerShell's process tree.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::tool::{self, Outcome, TempScript};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    File(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub script: Script,
    /// Appended to the script's invocation as PowerShell reads it.
    pub arguments: String,
    pub error_action: &'static str,
    pub working_directory: Option<PathBuf>,
    pub fail_on_stderr: bool,
    pub ignore_last_exit_code: bool,
}

impl Params {
    /// Every input error surfaces here, before credentials are resolved.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let default_dir = task
            .env
            .get("SYSTEM_DEFAULTWORKINGDIRECTORY")
            .map(PathBuf::from);
        let relative = |path: PathBuf| match (&default_dir, path.is_relative()) {
            (Some(dir), true) => dir.join(path),
            _ => path,
        };
        let script =
            match inputs.pick("scriptType", &["filePath", "inline"])? {
                None | Some("filePath") => {
                    let path = inputs.path("filePath").ok_or_else(|| {
                        anyhow!("Input required: filePath (scriptType is 'filePath')")
                    })?;
                    let path = relative(path);
                    // The agent fills an empty file input with the default folder.
                    if path.is_dir() {
                        bail!("Input required: filePath (scriptType is 'filePath')");
                    }
                    if !path.is_file() {
                        bail!(
                            "Input 'filePath': the script '{}' does not exist (or is not a file).",
                            path.display()
                        );
                    }
                    let ps1 = path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("ps1"));
                    if !ps1 {
                        bail!(
                            "Input 'filePath': '{}' is not a PowerShell script (.ps1).",
                            path.display()
                        );
                    }
                    Script::File(path)
                }
                Some(_) => Script::Inline(inputs.get("inlineScript").ok_or_else(|| {
                    anyhow!("Input required: inlineScript (scriptType is 'inline')")
                })?),
            };
        let error_action = match inputs
            .get("errorActionPreference")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("stop") => "Stop",
            Some("continue") => "Continue",
            Some("silentlycontinue") => "SilentlyContinue",
            Some(other) => bail!(
                "Input 'errorActionPreference': '{other}' is not one of stop, continue, silentlyContinue."
            ),
        };
        Ok(Params {
            script,
            arguments: inputs.get("arguments").unwrap_or_default(),
            error_action,
            working_directory: inputs.path("workingDirectory").map(relative),
            fail_on_stderr: inputs.bool("failOnStderr"),
            ignore_last_exit_code: inputs.bool("ignoreLASTEXITCODE"),
        })
    }
}

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line("arguments", ceiling::TEXT, "the script's arguments"),
    line("filePath", ceiling::PATH, "a script path"),
    lines("inlineScript", 5000, "a script of up to 5,000 characters"),
    line("workingDirectory", ceiling::PATH, "a folder path"),
    line("durationSeconds", ceiling::NUMBER, "a number of seconds"),
];

/// PowerShell 7 anywhere; Windows PowerShell on Windows without it.
pub fn find_powershell(env: &vsts_task::Env) -> Result<PathBuf> {
    let names: &[&str] = if cfg!(windows) {
        &["pwsh", "powershell"]
    } else {
        &["pwsh"]
    };
    if let Some(found) = tool::which(env, names) {
        return Ok(found);
    }
    if cfg!(windows) {
        bail!(
            "Neither PowerShell 7 (pwsh) nor Windows PowerShell (powershell.exe) was found on the agent's PATH."
        );
    }
    bail!(
        "PowerShell 7 (pwsh) was not found on the agent's PATH. Install it on the agent \
         (https://learn.microsoft.com/powershell/scripting/install/installing-powershell); \
         Microsoft-hosted agents have it."
    );
}

/// A PowerShell single-quoted string.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The wrapper that prepares the session and dot-sources the script.
pub fn wrapper(params: &Params, script: &Path, proxy: bool) -> String {
    let mut w = vec![format!(
        "$ErrorActionPreference = {}",
        quoted(params.error_action)
    )];
    w.push("$ProgressPreference = 'SilentlyContinue'".into());
    // The AWS Tools module that is installed, else the one for this
    // PowerShell, installed for the current user (as the original did).
    w.push(
        r#"$awsModule = @('AWS.Tools.Common', 'AWSPowerShell.NetCore', 'AWSPowerShell') | Where-Object { Get-Module -ListAvailable -Name $_ } | Select-Object -First 1
if (-not $awsModule) {
    $awsModule = if ($PSVersionTable.PSEdition -eq 'Core') { 'AWSPowerShell.NetCore' } else { 'AWSPowerShell' }
    Write-Host "The AWS Tools for PowerShell are not installed: installing $awsModule for the current user."
    if ($PSVersionTable.PSEdition -ne 'Core') { Install-PackageProvider -Name NuGet -Scope CurrentUser -Force | Out-Null }
    Install-Module -Name $awsModule -Scope CurrentUser -Force -AllowClobber
}
Import-Module -Name $awsModule
Write-Host "Using the AWS Tools for PowerShell module $awsModule, region $env:AWS_REGION.""#
            .into(),
    );
    if proxy {
        // The proxy's address and credentials come from HTTPS_PROXY, which
        // the task set: nothing secret is written to this file.
        w.push(
            r#"$awsProxy = [Uri]$env:HTTPS_PROXY
$awsProxyArgs = @{ Hostname = $awsProxy.Host; Port = $awsProxy.Port }
if ($awsProxy.UserInfo) {
    $awsProxyUser = $awsProxy.UserInfo.Split(':', 2)
    $awsProxyArgs.Username = [Uri]::UnescapeDataString($awsProxyUser[0])
    if ($awsProxyUser.Count -gt 1) { $awsProxyArgs.Password = [Uri]::UnescapeDataString($awsProxyUser[1]) }
}
Set-AWSProxy @awsProxyArgs
Remove-Variable awsProxy, awsProxyArgs, awsProxyUser -ErrorAction SilentlyContinue"#
                .into(),
        );
    }
    let invocation = format!(
        ". {} {}",
        quoted(&script.to_string_lossy()),
        params.arguments
    );
    w.push(invocation.trim_end().to_string());
    if !params.ignore_last_exit_code {
        w.push(
            r###"if (Test-Path -LiteralPath variable:\LASTEXITCODE) {
    Write-Host "##vso[task.debug]`$LASTEXITCODE: $LASTEXITCODE"
    exit $LASTEXITCODE
}"###
                .into(),
        );
    }
    w.join("\r\n") + "\r\n"
}

/// UTF-8 with a byte order mark: Windows PowerShell reads a file without
/// one in the system's ANSI code page.
fn with_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let powershell = find_powershell(&task.env)?;
    // A longer session for an assumed role or OIDC.
    let task = vsts_aws_common::with_session_duration(task, "durationSeconds")?;
    let setup = vsts_aws_common::configure(&task).await?;
    // Every secret in it is registered already.
    let aws = setup.tool_environment(&task).await?;
    if let Some(left) = aws.minutes_left() {
        task.console.info(&format!(
            "The script's credentials expire in {left} min. For a longer assumed-role or OIDC session, set \
             durationSeconds (up to the role's maximum session duration)."
        ));
    }

    let temp = task.temp_dir();
    let inline;
    let script_path = match &params.script {
        Script::File(path) => path.clone(),
        Script::Inline(text) => {
            inline = TempScript::write(&temp, "awspowershell_inline", "ps1", &with_bom(text))?;
            inline.path().to_path_buf()
        }
    };
    let proxy = aws.vars.iter().any(|(k, _)| *k == "HTTPS_PROXY");
    let wrapper = TempScript::write(
        &temp,
        "awspowershell",
        "ps1",
        &with_bom(&wrapper(&params, &script_path, proxy)),
    )?;
    let cwd = match &params.working_directory {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "Input 'workingDirectory': cannot create '{}'",
                    dir.display()
                )
            })?;
            dir.clone()
        }
        None => task
            .env
            .get("SYSTEM_DEFAULTWORKINGDIRECTORY")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let mut args: Vec<String> = vec![
        "-NoLogo".into(),
        "-NoProfile".into(),
        "-NonInteractive".into(),
    ];
    if cfg!(windows) {
        args.extend(["-ExecutionPolicy".into(), "Unrestricted".into()]);
    }
    args.extend([
        "-File".into(),
        wrapper.path().to_string_lossy().into_owned(),
    ]);
    task.console.info(&format!(
        "Running {} with {} in {} (ErrorActionPreference {}), with {} set.",
        script_path.display(),
        powershell.display(),
        cwd.display(),
        params.error_action,
        aws.aws_names()
    ));
    let outcome = tool::run(tool::Run {
        program: &powershell,
        args: &args,
        cwd: &cwd,
        env: tool::environment(&task.env, &aws.vars),
    })
    .await?;
    match outcome {
        Outcome::Exited { code: 0, stderr } if stderr && params.fail_on_stderr => {
            bail!("The script wrote to standard error, and failOnStderr is true.")
        }
        Outcome::Exited { code: 0, .. } => {
            task.console.info("The script succeeded.");
            Ok(())
        }
        Outcome::Exited { code, .. } => bail!("PowerShell exited with code {code}."),
        Outcome::Signalled(signal) => bail!("PowerShell was ended by signal {signal}."),
        Outcome::Cancelled(how) => {
            bail!("Cancelled ({how}): PowerShell and the processes it started were stopped.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "T",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    #[test]
    fn inputs_follow_the_original() {
        let dir = std::env::temp_dir().join(format!("awsps-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("deploy.PS1"), "Write-Host hi\n").unwrap();
        std::fs::write(dir.join("deploy.sh"), "echo hi\n").unwrap();
        let d = dir.to_str().unwrap();
        let p = params(&[
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
            ("INPUT_FILEPATH", "deploy.PS1"),
            ("INPUT_ARGUMENTS", "-Stage 'blue green'"),
            ("INPUT_ERRORACTIONPREFERENCE", "silentlyContinue"),
        ])
        .unwrap();
        assert_eq!(p.script, Script::File(dir.join("deploy.PS1")));
        assert_eq!(p.arguments, "-Stage 'blue green'");
        assert_eq!(p.error_action, "SilentlyContinue");
        assert_eq!(p.working_directory, None);
        let e = |pairs: &[(&str, &str)]| params(pairs).unwrap_err().to_string();
        assert!(
            e(&[
                ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
                ("INPUT_FILEPATH", "deploy.sh")
            ])
            .ends_with("deploy.sh' is not a PowerShell script (.ps1).")
        );
        assert!(
            e(&[
                ("SYSTEM_DEFAULTWORKINGDIRECTORY", d),
                ("INPUT_FILEPATH", "gone.ps1")
            ])
            .contains("gone.ps1' does not exist")
        );
        assert_eq!(
            e(&[("SYSTEM_DEFAULTWORKINGDIRECTORY", d), ("INPUT_FILEPATH", d)]),
            "Input required: filePath (scriptType is 'filePath')"
        );
        assert_eq!(
            e(&[("INPUT_SCRIPTTYPE", "inline")]),
            "Input required: inlineScript (scriptType is 'inline')"
        );
        assert!(
            e(&[
                ("INPUT_SCRIPTTYPE", "inline"),
                ("INPUT_INLINESCRIPT", "x"),
                ("INPUT_ERRORACTIONPREFERENCE", "inquire")
            ])
            .starts_with("Input 'errorActionPreference': 'inquire' is not one of")
        );
    }

    #[test]
    fn the_wrapper_dot_sources_the_script_and_passes_its_exit_code() {
        let mut p = params(&[("INPUT_SCRIPTTYPE", "inline"), ("INPUT_INLINESCRIPT", "x")]).unwrap();
        p.arguments = "-Name 'a b' -Count 2".into();
        let w = wrapper(&p, Path::new("/tmp/it's here.ps1"), false);
        let lines: Vec<&str> = w.split("\r\n").collect();
        assert_eq!(lines[0], "$ErrorActionPreference = 'Stop'");
        assert!(
            lines.contains(&". '/tmp/it''s here.ps1' -Name 'a b' -Count 2"),
            "{w}"
        );
        assert!(w.contains("exit $LASTEXITCODE"));
        assert!(!w.contains("Set-AWSProxy"));
        assert!(w.contains("Import-Module -Name $awsModule"));
        p.ignore_last_exit_code = true;
        p.arguments.clear();
        let w = wrapper(&p, Path::new("/s.ps1"), true);
        assert!(w.split("\r\n").any(|l| l == ". '/s.ps1'"), "{w}");
        assert!(!w.contains("LASTEXITCODE"));
        assert!(w.contains("Set-AWSProxy @awsProxyArgs"));
    }
}
