//! Pipeline variables: public ones as formatted environment names, secret
//! ones as `SECRET_<NAME>`.

use crate::env::{Env, env_name};

/// A variable's value and whether the pipeline marked it secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Variable {
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "***" } else { &self.value };
        write!(f, "Variable({value:?}, secret: {})", self.secret)
    }
}

#[derive(Clone, Copy)]
pub struct Variables<'a> {
    env: &'a Env,
}

impl<'a> Variables<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self { env }
    }

    /// A secret variable first, then a public one; `None` when empty.
    pub fn get(&self, name: &str) -> Option<Variable> {
        let key = env_name(name);
        if let Some(v) = self.env.get(&format!("SECRET_{key}")) {
            return Some(Variable {
                value: v.to_string(),
                secret: true,
            });
        }
        self.env.get(&key).map(|v| Variable {
            value: v.to_string(),
            secret: false,
        })
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.value)
    }

    /// Like [`Self::get`], but only for a variable the agent declared as a
    /// pipeline variable: a secret one, or a public one named in
    /// `VSTS_PUBLIC_VARIABLES`. This tells `AWS.Region` (exported as
    /// `AWS_REGION`) from an `AWS_REGION` that the machine itself sets.
    pub fn declared(&self, name: &str) -> Option<Variable> {
        let var = self.get(name)?;
        if var.secret || self.is_public_pipeline_variable(name) {
            Some(var)
        } else {
            None
        }
    }

    fn is_public_pipeline_variable(&self, name: &str) -> bool {
        let Some(list) = self.env.get("VSTS_PUBLIC_VARIABLES") else {
            return false;
        };
        let Ok(names) = serde_json::from_str::<Vec<String>>(list) else {
            return false;
        };
        let key = env_name(name);
        names.iter().any(|n| env_name(n) == key)
    }

    /// `System.Debug` is true.
    pub fn system_debug(&self) -> bool {
        self.value("System.Debug")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_wins_over_public() {
        let e = Env::from_pairs([
            ("SECRET_AWS_SECRETACCESSKEY", "s"),
            ("AWS_SECRETACCESSKEY", "p"),
        ]);
        let v = Variables::new(&e).get("AWS.SecretAccessKey").unwrap();
        assert_eq!(
            v,
            Variable {
                value: "s".into(),
                secret: true
            }
        );
        assert!(!format!("{v:?}").contains("\"s\""));
    }

    #[test]
    fn declared_tells_pipeline_variables_from_machine_environment() {
        let machine = Env::from_pairs([("AWS_REGION", "us-east-1")]);
        assert!(Variables::new(&machine).declared("AWS.Region").is_none());
        let pipeline = Env::from_pairs([
            ("AWS_REGION", "eu-west-1"),
            ("VSTS_PUBLIC_VARIABLES", r#"["system.debug","aws.region"]"#),
        ]);
        assert_eq!(
            Variables::new(&pipeline)
                .declared("AWS.Region")
                .unwrap()
                .value,
            "eu-west-1"
        );
        let secret = Env::from_pairs([("SECRET_AWS_REGION", "eu-north-1")]);
        assert!(
            Variables::new(&secret)
                .declared("AWS.Region")
                .unwrap()
                .secret
        );
    }
}
