//! The parameters sent with the operation.

use std::collections::HashMap;

use vsts_cfn::parameters::Parameter;

use crate::Deploy;
use crate::template::Spec;

/// The parameters to send: the user's, plus UsePreviousValue for the
/// template's parameters the user did not give and the stack already has
/// (on update). Registers the values of NoEcho parameters as secrets.
/// Without GetTemplateSummary (not allowed, say) the user's parameters go
/// as they are.
pub(crate) async fn complete(d: &Deploy<'_>) -> Vec<Parameter> {
    let (client, p, console) = (&d.client, d.p, &d.task.console);
    let (existing, exists) = (d.existing.as_ref(), d.exists);
    let mut params = p.parameters.clone();
    let summary = {
        let req = client.get_template_summary();
        let req = match &d.spec {
            Spec::Body(b) => req.template_body(b),
            Spec::Url(u) => req.template_url(u),
            Spec::Previous => req.stack_name(&p.stack_name),
        };
        req.send().await
    };
    let mut previous = Vec::new();
    match summary {
        Ok(summary) => {
            let declared = summary.parameters();
            for d in declared.iter().filter(|d| d.no_echo() == Some(true)) {
                if let Some(v) = params
                    .iter()
                    .find(|x| Some(x.key.as_str()) == d.parameter_key())
                    .and_then(|x| x.value.as_deref())
                {
                    console.set_secret(v);
                }
            }
            if exists && p.use_previous_values {
                let current: HashMap<&str, Option<&str>> = existing
                    .map(|s| {
                        s.parameters()
                            .iter()
                            .filter_map(|x| Some((x.parameter_key()?, x.parameter_value())))
                            .collect()
                    })
                    .unwrap_or_default();
                for d in declared {
                    let Some(key) = d.parameter_key() else {
                        continue;
                    };
                    let Some(value) = current.get(key) else {
                        continue;
                    };
                    if params.iter().any(|x| x.key == key) {
                        continue;
                    }
                    // When the current value is the default, the default
                    // gives it back; NoEcho values read as "****" and must
                    // be kept explicitly.
                    let is_default =
                        value.is_some() && *value == d.default_value() && d.no_echo() != Some(true);
                    if !is_default {
                        params.push(Parameter::previous(key));
                        previous.push(key.to_string());
                    }
                }
            }
        }
        Err(e) => console.debug(&format!(
            "GetTemplateSummary failed, parameters are sent as given: {}",
            vsts_aws_common::sdk_error_text(&e)
        )),
    }
    let given: Vec<&str> = p
        .parameters
        .iter()
        .map(|x| x.key.as_str())
        .filter(|k| !p.overridden.iter().any(|o| o == k))
        .collect();
    let mut parts = Vec::new();
    if !given.is_empty() {
        parts.push(format!(
            "{} (from {})",
            given.join(", "),
            p.parameters_source.as_deref().unwrap_or("the parameters")
        ));
    }
    if !p.overridden.is_empty() {
        parts.push(format!("{} (parameterOverrides)", p.overridden.join(", ")));
    }
    if !previous.is_empty() {
        parts.push(format!("{} (current values kept)", previous.join(", ")));
    }
    if !parts.is_empty() {
        console.info(&format!("Parameters: {}", parts.join("; ")));
    }
    params
}
