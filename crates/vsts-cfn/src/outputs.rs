//! `outputVariable`, `captureStackOutputs` and `captureAsSecuredVars`,
//! shared by CreateOrUpdateStack and ExecuteChangeSet.

use anyhow::Result;
use aws_sdk_cloudformation::types::Stack;
use serde_json::{Map, Value};
use vsts_task::{InputResult, Task, VariableOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Ignore,
    AsVariables,
    AsJson,
}

#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// Receives the stack id.
    pub stack_id_variable: Option<String>,
    pub capture: Capture,
    pub secure: bool,
}

impl OutputOptions {
    pub fn from_task(task: &Task) -> InputResult<Self> {
        let inputs = task.inputs();
        let capture = match inputs
            .pick("captureStackOutputs", &["ignore", "asVariables", "asJSON"])?
            .unwrap_or("ignore")
        {
            "asVariables" => Capture::AsVariables,
            "asJSON" => Capture::AsJson,
            _ => Capture::Ignore,
        };
        Ok(OutputOptions {
            stack_id_variable: inputs.get("outputVariable"),
            capture,
            secure: inputs.bool_or("captureAsSecuredVars", true),
        })
    }
}

/// The outputs as the original wrote them with `JSON.stringify(Outputs)`.
pub fn outputs_json(stack: &Stack) -> String {
    let list: Vec<Value> = stack
        .outputs()
        .iter()
        .map(|o| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<&str>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), Value::String(v.to_string()));
                }
            };
            put("OutputKey", o.output_key());
            put("OutputValue", o.output_value());
            put("Description", o.description());
            put("ExportName", o.export_name());
            Value::Object(m)
        })
        .collect();
    Value::Array(list).to_string()
}

/// Sets the stack id variable and captures the outputs as asked. Secret
/// values are registered before anything is printed. Returns the Markdown
/// rows for the summary (values only when they are not secret).
pub fn publish(task: &Task, options: &OutputOptions, stack: &Stack) -> Result<String> {
    let console = &task.console;
    let stack_name = stack.stack_name().unwrap_or_default();
    let vars = VariableOptions {
        secret: options.secure,
        ..Default::default()
    };
    if options.secure && options.capture != Capture::Ignore {
        for o in stack.outputs() {
            if let Some(v) = o.output_value() {
                console.set_secret(v);
            }
        }
    }
    if let Some(name) = &options.stack_id_variable {
        let id = stack.stack_id().unwrap_or_default();
        console.info(&format!("Setting variable '{name}' to the stack id {id}"));
        console.set_variable(name, id, VariableOptions::default());
    }
    match options.capture {
        Capture::Ignore => {}
        Capture::AsVariables => {
            for o in stack.outputs() {
                let (Some(k), Some(v)) = (o.output_key(), o.output_value()) else {
                    continue;
                };
                console.info(&format!(
                    "Setting variable '{k}' from stack output {k}{}",
                    if options.secure { " (secret)" } else { "" }
                ));
                console.set_variable(k, v, vars);
            }
        }
        Capture::AsJson => {
            let name = format!("{stack_name}Outputs");
            console.info(&format!(
                "Setting variable '{name}' to the stack outputs as JSON{}",
                if options.secure { " (secret)" } else { "" }
            ));
            console.set_variable(&name, &outputs_json(stack), vars);
        }
    }
    let mut md = String::new();
    if !stack.outputs().is_empty() {
        md.push_str("#### Outputs\n\n| Key | Value |\n|---|---|\n");
        for o in stack.outputs() {
            // Values are shown only when the user made them plain variables.
            let shown = match (options.capture, options.secure) {
                (Capture::Ignore, _) => "(not captured)".to_string(),
                (_, true) => "(secret)".to_string(),
                (_, false) => crate::changeset::cell(o.output_value().unwrap_or_default()),
            };
            md.push_str(&format!(
                "| {} | {} |\n",
                crate::changeset::cell(o.output_key().unwrap_or_default()),
                shown
            ));
        }
    }
    Ok(md)
}
