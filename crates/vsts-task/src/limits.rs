//! What each text input of a task may hold, checked before the task does
//! anything else: a value over the service's limit (or a sane ceiling) or
//! with control characters fails with an error that names the input and the
//! limit, instead of reaching an SDK that panics on it (a 100 KB function
//! name does) or a service that answers with something less clear.
//!
//! Every task declares one [`Limit`] per free-text input of its task.json;
//! a workspace test feeds each one hostile values.

use crate::inputs::{InputError, InputResult, Inputs};

/// One line, or several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A name, an ARN, a number: no control character at all.
    Line,
    /// Free text over several lines: tab, CR and LF allowed.
    Lines,
}

/// The limit of one input.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub input: &'static str,
    /// Characters, after the agent's trimming.
    pub max: usize,
    pub shape: Shape,
    /// What the limit is, for the error: "a Lambda function name or ARN".
    pub what: &'static str,
}

/// A one-line input of at most `max` characters.
pub const fn line(input: &'static str, max: usize, what: &'static str) -> Limit {
    Limit {
        input,
        max,
        shape: Shape::Line,
        what,
    }
}

/// A multi-line input of at most `max` characters.
pub const fn lines(input: &'static str, max: usize, what: &'static str) -> Limit {
    Limit {
        input,
        max,
        shape: Shape::Lines,
        what,
    }
}

/// Ceilings for inputs no service limits more tightly.
pub mod ceiling {
    /// A local file or folder path (Windows long paths included).
    pub const PATH: usize = 4096;
    /// A pipeline variable name.
    pub const VARIABLE: usize = 256;
    /// A whole number given as text.
    pub const NUMBER: usize = 20;
    /// An ARN (IAM's documented maximum).
    pub const ARN: usize = 2048;
    /// An endpoint URL.
    pub const URL: usize = 2048;
    /// A glob pattern list or other free text that only the task reads.
    pub const TEXT: usize = 64 * 1024;
}

impl Inputs<'_> {
    /// Checks every input in `limits`; the first one that breaks its limit
    /// is the error.
    pub fn check_limits(&self, limits: &[Limit]) -> InputResult<()> {
        for limit in limits {
            let Some(value) = self.get(limit.input) else {
                continue;
            };
            check(limit, &value)?;
        }
        Ok(())
    }
}

fn check(limit: &Limit, value: &str) -> InputResult<()> {
    let name = limit.input;
    let len = value.chars().count();
    if len > limit.max {
        return Err(InputError(format!(
            "Input '{name}' is {len} characters long; the limit is {} ({}).",
            limit.max, limit.what
        )));
    }
    for (i, c) in value.chars().enumerate() {
        let allowed = match limit.shape {
            Shape::Line => !c.is_control(),
            Shape::Lines => !c.is_control() || matches!(c, '\t' | '\r' | '\n'),
        };
        if !allowed {
            let kind = match limit.shape {
                Shape::Line => "it must be one line of text",
                Shape::Lines => "only tabs and line breaks are allowed",
            };
            return Err(InputError(format!(
                "Input '{name}' has a control character (U+{:04X}) at position {}: {kind}.",
                c as u32,
                i + 1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Env;

    const LIMITS: &[Limit] = &[
        line("functionName", 140, "a Lambda function name or ARN"),
        lines("payload", 100, "a test ceiling"),
    ];

    fn check_env(pairs: &[(&str, &str)]) -> InputResult<()> {
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Inputs::new(&env).check_limits(LIMITS)
    }

    #[test]
    fn over_long_values_name_the_input_and_the_limit() {
        let long = "f".repeat(100_000);
        assert_eq!(
            check_env(&[("INPUT_FUNCTIONNAME", &long)]).unwrap_err().0,
            "Input 'functionName' is 100000 characters long; the limit is 140 (a Lambda function name or ARN)."
        );
        assert!(check_env(&[("INPUT_FUNCTIONNAME", &"f".repeat(140))]).is_ok());
        // Characters, not bytes.
        assert!(check_env(&[("INPUT_FUNCTIONNAME", &"é".repeat(140))]).is_ok());
    }

    #[test]
    fn control_characters_depend_on_the_shape() {
        let e = check_env(&[("INPUT_FUNCTIONNAME", "a\u{1}b")])
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "Input 'functionName' has a control character (U+0001) at position 2: it must be one line of text."
        );
        assert!(check_env(&[("INPUT_FUNCTIONNAME", "a\nb")]).is_err());
        assert!(check_env(&[("INPUT_PAYLOAD", "{\n\t\"a\": 1\r\n}")]).is_ok());
        assert!(check_env(&[("INPUT_PAYLOAD", "a\u{0}b")]).is_err());
        assert!(check_env(&[("INPUT_PAYLOAD", "a\u{9b}b")]).is_err());
        assert!(
            check_env(&[("INPUT_OTHER", "a\u{1}b")]).is_ok(),
            "only listed inputs"
        );
    }
}
