//! Task inputs (`INPUT_<NAME>`), read with task-lib's rules and checked with
//! errors that name the input and what is allowed.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::env::{Env, env_name};

/// A bad input: the message names the input, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

pub type InputResult<T> = Result<T, InputError>;

/// The inputs of the running task.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    env: &'a Env,
}

impl<'a> Inputs<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self { env }
    }

    /// The value, trimmed; `None` when empty or not set.
    pub fn get(&self, name: &str) -> Option<String> {
        self.env
            .get(&format!("INPUT_{}", env_name(name)))
            .map(|v| v.trim().to_string())
    }

    /// task-lib's `Input required: <name>`.
    pub fn required(&self, name: &str) -> InputResult<String> {
        self.get(name)
            .ok_or_else(|| InputError(format!("Input required: {name}")))
    }

    /// Case-insensitive `true` is true; anything else, empty included, is
    /// false (task-lib's `getBoolInput`).
    pub fn bool(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Like [`Self::bool`], with a default for an input that is not set at all
    /// (a value of anything but `true` is still false).
    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => default,
        }
    }

    /// A whole number within `range`.
    pub fn int(&self, name: &str, range: RangeInclusive<i64>) -> InputResult<Option<i64>> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let describe = || {
            InputError(format!(
                "Input '{name}' must be a whole number from {} to {} (got '{raw}')",
                range.start(),
                range.end()
            ))
        };
        let n: i64 = raw.parse().map_err(|_| describe())?;
        if !range.contains(&n) {
            return Err(describe());
        }
        Ok(Some(n))
    }

    /// One of `allowed`, matched case-insensitively; returned in the spelling
    /// of `allowed`.
    pub fn pick(&self, name: &str, allowed: &[&'static str]) -> InputResult<Option<&'static str>> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&raw))
            .copied()
            .map(Some)
            .ok_or_else(|| {
                InputError(format!(
                    "Input '{name}' must be one of: {} (got '{raw}')",
                    allowed.join(", ")
                ))
            })
    }

    /// A multi-line list: one item per line, trimmed, blank lines dropped.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Items separated by `delimiter` (or by newlines), trimmed, empty ones
    /// dropped.
    pub fn list(&self, name: &str, delimiter: char) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split([delimiter, '\n'])
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Key=Value` lines. The key is trimmed and must not be empty; the value
    /// is everything after the first `=`, trimmed.
    pub fn key_values(&self, name: &str) -> InputResult<Vec<(String, String)>> {
        let Some(raw) = self.get(name) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (number, line) in raw.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    out.push((k.trim().to_string(), v.trim().to_string()))
                }
                _ => {
                    return Err(InputError(format!(
                        "Input '{name}', line {}: expected Key=Value, got '{line}'",
                        number + 1
                    )));
                }
            }
        }
        Ok(out)
    }

    /// A `filePath` input, `None` when the user left it empty. The agent
    /// fills an empty `filePath` input with the sources folder (or the
    /// default working folder in a release), so that value also reads as
    /// "not set", as task-lib's `filePathSupplied` decides.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        let raw = self.get(name)?;
        let filled_in = ["BUILD_SOURCESDIRECTORY", "SYSTEM_DEFAULTWORKINGDIRECTORY"]
            .iter()
            .filter_map(|var| self.env.get(var))
            .any(|dir| same_path(&raw, dir));
        (!filled_in).then(|| PathBuf::from(raw))
    }

    /// A path to an existing file; `None` when not set (see [`Self::path`]).
    pub fn existing_file(&self, name: &str) -> InputResult<Option<PathBuf>> {
        if self.path(name).is_none() {
            return Ok(None);
        }
        self.existing_path(name, false)
    }

    /// A path to an existing folder. The sources folder is a folder a user
    /// may mean, so here the agent's fill-in is taken as given.
    pub fn existing_dir(&self, name: &str) -> InputResult<Option<PathBuf>> {
        self.existing_path(name, true)
    }

    fn existing_path(&self, name: &str, dir: bool) -> InputResult<Option<PathBuf>> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let path = PathBuf::from(&raw);
        let kind = if dir { "folder" } else { "file" };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() == dir => Ok(Some(path)),
            Ok(_) => Err(InputError(format!(
                "Input '{name}': '{raw}' is not a {kind}"
            ))),
            Err(e) => Err(InputError(format!(
                "Input '{name}': {kind} '{raw}' cannot be read: {e}"
            ))),
        }
    }
}

/// Two spellings of one folder: trailing separators aside, and ignoring case
/// and separator style on Windows.
fn same_path(a: &str, b: &str) -> bool {
    let norm = |p: &str| {
        let p = if cfg!(windows) {
            p.replace('/', "\\").to_lowercase()
        } else {
            p.to_string()
        };
        p.trim_end_matches(['/', '\\']).to_string()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn names_follow_the_agent_transformation() {
        let e = env(&[("INPUT_AWS_CREDENTIALS", " x ")]);
        assert_eq!(Inputs::new(&e).get("aws.credentials").as_deref(), Some("x"));
    }

    #[test]
    fn required_uses_task_lib_wording() {
        let e = env(&[("INPUT_BUCKETNAME", "")]);
        let err = Inputs::new(&e).required("bucketName").unwrap_err();
        assert_eq!(err.to_string(), "Input required: bucketName");
    }

    #[test]
    fn bools_are_true_only_for_true() {
        let e = env(&[("INPUT_A", "TRUE"), ("INPUT_B", "yes"), ("INPUT_C", "")]);
        let i = Inputs::new(&e);
        assert!(i.bool("a"));
        assert!(!i.bool("b"));
        assert!(!i.bool("c"));
        assert!(i.bool_or("d", true));
        assert!(!i.bool_or("b", true));
    }

    #[test]
    fn ints_are_checked_against_their_range() {
        let e = env(&[("INPUT_N", "5"), ("INPUT_BIG", "99"), ("INPUT_BAD", "5x")]);
        let i = Inputs::new(&e);
        assert_eq!(i.int("n", 1..=10), Ok(Some(5)));
        assert_eq!(i.int("missing", 1..=10), Ok(None));
        let err = i.int("big", 1..=10).unwrap_err().to_string();
        assert_eq!(
            err,
            "Input 'big' must be a whole number from 1 to 10 (got '99')"
        );
        assert!(i.int("bad", 1..=10).is_err());
    }

    #[test]
    fn pick_lists_name_every_allowed_value() {
        let e = env(&[("INPUT_MODE", "CodeOnly"), ("INPUT_OTHER", "zip")]);
        let i = Inputs::new(&e);
        let allowed = ["codeonly", "codeandconfiguration"];
        assert_eq!(i.pick("mode", &allowed), Ok(Some("codeonly")));
        assert_eq!(
            i.pick("other", &allowed).unwrap_err().to_string(),
            "Input 'other' must be one of: codeonly, codeandconfiguration (got 'zip')"
        );
    }

    #[test]
    fn lines_and_key_values() {
        let e = env(&[
            ("INPUT_GLOBS", "**\n\n  !*.tmp \n"),
            ("INPUT_TAGS", "a=1\n b = x=y \n"),
            ("INPUT_BADTAGS", "a=1\nnovalue"),
        ]);
        let i = Inputs::new(&e);
        assert_eq!(i.lines("globs"), ["**", "!*.tmp"]);
        assert_eq!(
            i.key_values("tags").unwrap(),
            [("a".into(), "1".into()), ("b".into(), "x=y".into())]
        );
        assert_eq!(
            i.key_values("badtags").unwrap_err().to_string(),
            "Input 'badtags', line 2: expected Key=Value, got 'novalue'"
        );
    }

    #[test]
    fn paths_must_exist_with_the_right_kind() {
        let dir = std::env::temp_dir();
        let d = dir.to_string_lossy().into_owned();
        let e = env(&[("INPUT_DIR", &d), ("INPUT_NOPE", "/definitely/not/here")]);
        let i = Inputs::new(&e);
        assert_eq!(i.existing_dir("dir").unwrap(), Some(dir));
        assert!(
            i.existing_file("dir")
                .unwrap_err()
                .0
                .contains("is not a file")
        );
        assert!(
            i.existing_file("nope")
                .unwrap_err()
                .0
                .contains("Input 'nope'")
        );
    }

    /// The agent puts the sources folder (build) or the default working
    /// folder (release) into a `filePath` input the user left empty.
    #[test]
    fn a_file_path_filled_in_by_the_agent_is_not_set() {
        let e = env(&[
            ("BUILD_SOURCESDIRECTORY", "/a/1/s"),
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", "/a/r1/a"),
            ("INPUT_BUILD", "/a/1/s/"),
            ("INPUT_RELEASE", "/a/r1/a"),
            ("INPUT_GIVEN", "/a/1/s/template.yml"),
            ("INPUT_EMPTY", ""),
        ]);
        let i = Inputs::new(&e);
        assert_eq!(i.path("build"), None);
        assert_eq!(i.path("release"), None);
        assert_eq!(i.path("empty"), None);
        assert_eq!(i.path("given"), Some(PathBuf::from("/a/1/s/template.yml")));
        assert_eq!(i.existing_file("build"), Ok(None));
        let only_workdir = env(&[("INPUT_X", "/w"), ("SYSTEM_DEFAULTWORKINGDIRECTORY", "/w")]);
        assert_eq!(Inputs::new(&only_workdir).path("x"), None);
    }
}
