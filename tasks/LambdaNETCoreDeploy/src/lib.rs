//! LambdaNETCoreDeploy: builds, packages and deploys a .NET Lambda function
//! (`dotnet lambda deploy-function`, or `package` with `packageOnly`) or a
//! serverless application (`deploy-serverless`, or `package-ci`) with the
//! Amazon.Lambda.Tools global tool, as the original does: the project's
//! folder is the working folder, a `profile` in its
//! `aws-lambda-tools-defaults.json` is cleared (it would win over the
//! task's credentials), `dotnet restore` runs first, and the region goes
//! as `--region`.
//!
//! Beyond the original: the credentials (and proxy) reach the tools in the
//! environment only, every secret registered first, and none of the
//! agent's secrets do; the tool is installed only when it is missing (the
//! original tried an install, then an update, on every run), and found in
//! `~/.dotnet/tools` (the original looked in a folder literally named `~`);
//! memory and timeout are checked against Lambda's limits; a cancelled
//! step stops the tools' whole process tree; a package-only run says where
//! the package is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use vsts_task::Task;
use vsts_task::limits::{Limit, ceiling, line};
use vsts_task::tool::{self, Outcome};

/// What each free-text input may hold, checked before anything else.
pub const INPUT_LIMITS: &[Limit] = &[
    line(
        "lambdaProjectPath",
        ceiling::PATH,
        "a project folder or file",
    ),
    line("packageOutputFile", ceiling::PATH, "a file path"),
    line("functionName", 140, "a Lambda function name or ARN"),
    line("functionRole", ceiling::ARN, "an IAM role name or ARN"),
    line("functionHandler", 512, "a .NET Lambda handler"),
    line("functionMemory", ceiling::NUMBER, "a number of MB"),
    line("functionTimeout", ceiling::NUMBER, "a number of seconds"),
    line("stackName", 128, "a CloudFormation stack name"),
    line("s3Bucket", 63, "an S3 bucket name"),
    line("s3Prefix", 1024, "an S3 key prefix"),
    line(
        "additionalArgs",
        ceiling::TEXT,
        "more Amazon.Lambda.Tools options",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub serverless: bool,
    /// The output file in package-only mode.
    pub package_only: Option<PathBuf>,
    pub project_dir: PathBuf,
    pub function_name: Option<String>,
    pub function_role: Option<String>,
    pub function_handler: Option<String>,
    pub memory: Option<i64>,
    pub timeout: Option<i64>,
    pub stack_name: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
    pub additional: Vec<String>,
}

impl Params {
    pub fn from_task(task: &Task) -> Result<Self> {
        let i = task.inputs();
        let serverless = i
            .pick("command", &["deployFunction", "deployServerless"])?
            .unwrap_or("deployFunction")
            == "deployServerless";
        let package_only = if i.bool("packageOnly") {
            Some(i.path("packageOutputFile").ok_or_else(|| {
                anyhow::anyhow!("Input required: packageOutputFile (packageOnly is true)")
            })?)
        } else {
            None
        };
        let project = i
            .path("lambdaProjectPath")
            .ok_or_else(|| anyhow::anyhow!("Input required: lambdaProjectPath"))?;
        if !project.exists() {
            bail!(
                "Input 'lambdaProjectPath': {} does not exist.",
                project.display()
            );
        }
        let project_dir = if project.is_dir() {
            project
        } else {
            project
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        Ok(Params {
            serverless,
            package_only,
            project_dir,
            function_name: i.get("functionName"),
            function_role: i.get("functionRole"),
            function_handler: i.get("functionHandler"),
            memory: i.int("functionMemory", 128..=10240)?,
            timeout: i.int("functionTimeout", 1..=900)?,
            stack_name: i.get("stackName"),
            s3_bucket: i.get("s3Bucket"),
            s3_prefix: i.get("s3Prefix"),
            additional: tool::split_arguments(&i.get("additionalArgs").unwrap_or_default()),
        })
    }

    /// The Lambda tools' arguments, as the original builds them.
    pub fn lambda_args(&self, region: &str) -> Vec<String> {
        fn opt(args: &mut Vec<String>, flag: &str, value: Option<String>) {
            if let Some(v) = value {
                args.push(flag.to_string());
                args.push(v);
            }
        }
        let mut args: Vec<String> = Vec::new();
        let out = self.package_only.as_ref().map(|p| p.display().to_string());
        let region = Some(region.to_string());
        if self.serverless {
            match out {
                Some(file) => args.extend(["package-ci".to_string(), "-ot".to_string(), file]),
                None => {
                    args.push("deploy-serverless".into());
                    opt(&mut args, "--stack-name", self.stack_name.clone());
                }
            }
            opt(&mut args, "--region", region);
            opt(&mut args, "--s3-bucket", self.s3_bucket.clone());
            opt(&mut args, "--s3-prefix", self.s3_prefix.clone());
        } else {
            match out {
                Some(file) => args.extend(["package".to_string(), "-o".to_string(), file]),
                None => args.push("deploy-function".into()),
            }
            opt(&mut args, "--region", region);
            opt(&mut args, "-fn", self.function_name.clone());
            opt(&mut args, "-fh", self.function_handler.clone());
            opt(&mut args, "--function-role", self.function_role.clone());
            opt(
                &mut args,
                "--function-memory-size",
                self.memory.map(|m| m.to_string()),
            );
            opt(
                &mut args,
                "--function-timeout",
                self.timeout.map(|t| t.to_string()),
            );
        }
        args.push("--disable-interactive".into());
        args.push("true".into());
        args.extend(self.additional.iter().cloned());
        args
    }
}

/// Clears a `profile` in the project's `aws-lambda-tools-defaults.json`,
/// as the original does: the tools would take that profile's credentials
/// over the ones in their environment.
pub fn clear_profile(task: &Task, dir: &Path) -> Result<()> {
    let path = dir.join("aws-lambda-tools-defaults.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut json: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let profile = json["profile"].as_str().unwrap_or("").to_string();
    if profile.is_empty() {
        return Ok(());
    }
    task.console.info(&format!(
        "Clearing profile '{profile}' in {} so that the task's credentials are used.",
        path.display()
    ));
    json["profile"] = serde_json::Value::String(String::new());
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Where the global tool lands: `~/.dotnet/tools`.
fn tools_dir(task: &Task) -> Option<PathBuf> {
    let home = if cfg!(windows) {
        task.env.raw("USERPROFILE")
    } else {
        task.env.raw("HOME")
    }?;
    Some(Path::new(home).join(".dotnet").join("tools"))
}

/// `dotnet-lambda`, on PATH or in `~/.dotnet/tools`.
fn lambda_tool(task: &Task) -> Option<PathBuf> {
    tool::which(&task.env, &["dotnet-lambda"]).or_else(|| {
        let dir = tools_dir(task)?;
        ["dotnet-lambda.exe", "dotnet-lambda"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    })
}

async fn step(
    what: &str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> Result<i32> {
    match tool::run(tool::Run {
        program,
        args,
        cwd,
        env: env.to_vec(),
    })
    .await?
    {
        Outcome::Exited { code, .. } => Ok(code),
        Outcome::Signalled(signal) => bail!("{what} was ended by signal {signal}."),
        Outcome::Cancelled(how) => bail!("Cancelled ({how}): {what} was stopped."),
    }
}

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let p = Params::from_task(&task)?;
    let console = &task.console;
    let Some(dotnet) = tool::which(&task.env, &["dotnet"]) else {
        bail!(
            "The .NET SDK (dotnet) was not found on the agent's PATH. Install it on the agent, or add a UseDotNet@2 step before this one."
        );
    };
    let setup = vsts_aws_common::configure(&task).await?;
    // Every secret in it is registered already.
    let aws = setup.tool_environment(&task).await?;
    let env = tool::environment(&task.env, &aws.vars);
    let cwd = &p.project_dir;
    console.info(&format!(
        "Project folder {}; the tools get {} in their environment.",
        cwd.display(),
        aws.aws_names()
    ));
    clear_profile(&task, cwd)?;

    let lambda = match lambda_tool(&task) {
        Some(path) => {
            console.info(&format!("Amazon.Lambda.Tools: {}", path.display()));
            Some(path)
        }
        None => {
            console.info("Installing the Amazon.Lambda.Tools global tool.");
            let install = ["tool", "install", "-g", "Amazon.Lambda.Tools"].map(String::from);
            let mut code = step("dotnet tool install", &dotnet, &install, cwd, &env).await?;
            if code != 0 {
                let update = ["tool", "update", "-g", "Amazon.Lambda.Tools"].map(String::from);
                code = step("dotnet tool update", &dotnet, &update, cwd, &env).await?;
            }
            if code != 0 {
                console.warning(
                    "Amazon.Lambda.Tools could not be installed or updated (dotnet tool install/update failed); trying the project's own 'dotnet lambda'.",
                );
            }
            lambda_tool(&task)
        }
    };

    console.info("Restoring the project's packages (dotnet restore).");
    let code = step(
        "dotnet restore",
        &dotnet,
        &["restore".to_string()],
        cwd,
        &env,
    )
    .await?;
    if code != 0 {
        bail!("dotnet restore exited with code {code}.");
    }

    let args = p.lambda_args(&setup.region);
    let (program, args, shown) = match &lambda {
        Some(path) => (
            path.clone(),
            args.clone(),
            format!("dotnet-lambda {}", args[0]),
        ),
        None => {
            let mut all = vec!["lambda".to_string()];
            all.extend(args.iter().cloned());
            (dotnet.clone(), all, format!("dotnet lambda {}", args[0]))
        }
    };
    console.info(&format!(
        "{} {}",
        if p.package_only.is_some() {
            "Packaging with"
        } else {
            "Deploying with"
        },
        shown
    ));
    let code = step(&shown, &program, &args, cwd, &env).await?;
    if code != 0 {
        bail!("{shown} exited with code {code}.");
    }
    match &p.package_only {
        Some(file) if file.is_file() => console.info(&format!(
            "Package written to {} ({} bytes).",
            file.display(),
            std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
        )),
        Some(file) => console.warning(&format!(
            "{shown} succeeded, but {} was not written.",
            file.display()
        )),
        None => console.info(&format!("{shown} succeeded.")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(serverless: bool, package: Option<&str>) -> Params {
        Params {
            serverless,
            package_only: package.map(PathBuf::from),
            project_dir: PathBuf::from("/src/fn"),
            function_name: Some("orders".into()),
            function_role: Some("role".into()),
            function_handler: Some("Asm::Ns.Fn::Handler".into()),
            memory: Some(512),
            timeout: Some(30),
            stack_name: Some("orders-stack".into()),
            s3_bucket: Some("b".into()),
            s3_prefix: Some("p/".into()),
            additional: vec!["--msbuild-parameters".into(), "/p:X=1".into()],
        }
    }

    #[test]
    fn arguments_are_the_originals() {
        assert_eq!(
            params(false, None).lambda_args("eu-west-1").join(" "),
            "deploy-function --region eu-west-1 -fn orders -fh Asm::Ns.Fn::Handler --function-role role --function-memory-size 512 --function-timeout 30 --disable-interactive true --msbuild-parameters /p:X=1"
        );
        assert_eq!(
            params(false, Some("/out/fn.zip")).lambda_args("eu-west-1")[..3].join(" "),
            "package -o /out/fn.zip"
        );
        assert_eq!(
            params(true, None).lambda_args("eu-west-1").join(" "),
            "deploy-serverless --stack-name orders-stack --region eu-west-1 --s3-bucket b --s3-prefix p/ --disable-interactive true --msbuild-parameters /p:X=1"
        );
        assert_eq!(
            params(true, Some("/out/t.yaml")).lambda_args("eu-west-1")[..3].join(" "),
            "package-ci -ot /out/t.yaml"
        );
    }
}
