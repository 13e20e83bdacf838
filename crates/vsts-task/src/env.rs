//! A snapshot of the process environment with the agent's lookup rules.
//!
//! Tasks never read `std::env` directly: everything goes through an [`Env`],
//! so tests build one from a list of pairs and run in parallel without
//! touching the process environment.

use std::collections::BTreeMap;
use std::fmt;

/// The agent's name transformation (`VarUtil.ConvertToEnvVariableFormat`):
/// `.` and space become `_`, and the result is upper-cased.
pub fn env_name(name: &str) -> String {
    name.replace(['.', ' '], "_").to_uppercase()
}

/// Environment variables, looked up by exact name first and then
/// case-insensitively (the agent's Windows environment is case-insensitive,
/// and endpoint GUIDs may be spelled in either case).
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The environment of this process. Values that are not valid UTF-8 are
    /// converted lossily.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Adds or replaces one variable (tests and local runs build on a base).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// The raw value, empty or not.
    pub fn raw(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.vars.get(name) {
            return Some(v);
        }
        self.vars
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value when it is set and not blank: the agent exports every
    /// declared input, empty ones included, so empty means "not given".
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }

    /// Every variable whose name starts with `prefix` (case-insensitive),
    /// with the rest of the name.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars.iter().filter_map(move |(k, v)| {
            let head = k.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| (&k[prefix.len()..], v.as_str()))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Never prints values: the environment holds secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Env({} variables)", self.vars.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_formatted_like_the_agent() {
        assert_eq!(env_name("AWS.AccessKeyID"), "AWS_ACCESSKEYID");
        assert_eq!(env_name("my var.x-y"), "MY_VAR_X-Y");
    }

    #[test]
    fn exact_name_wins_then_case_insensitive() {
        let env = Env::from_pairs([("Abc", "1"), ("ABC", "2"), ("xyz", "3")]);
        assert_eq!(env.raw("ABC"), Some("2"));
        assert_eq!(env.raw("XYZ"), Some("3"));
        assert_eq!(env.raw("nope"), None);
    }

    #[test]
    fn blank_values_count_as_absent() {
        let env = Env::from_pairs([("A", "  "), ("B", "")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.raw("B"), Some(""));
        assert_eq!(env.get("B"), None);
    }

    #[test]
    fn debug_output_hides_values() {
        let env = Env::from_pairs([("SECRET_X", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
    }
}
