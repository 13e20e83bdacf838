//! File patterns with azure-pipelines-task-lib's `match` semantics
//! (minimatch): one pattern a line, applied in order; `!` lines exclude from
//! what earlier lines included; `#` lines are comments; `**` crosses folders;
//! dot files match; braces are literal; case-insensitive on Windows.

use anyhow::{Result, anyhow};
use glob::{MatchOptions, Pattern};

#[derive(Debug, Clone)]
pub struct Patterns {
    rules: Vec<(bool, Pattern)>,
    options: MatchOptions,
}

impl Patterns {
    /// `root` is stripped from absolute patterns that start with it (task-lib
    /// roots relative patterns there).
    pub fn parse(
        input: &str,
        lines: &[String],
        root: Option<&str>,
        case_insensitive: bool,
    ) -> Result<Self> {
        let mut rules = Vec::new();
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, mut pattern) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim().to_string()),
                None => (true, line.to_string()),
            };
            pattern = pattern.replace('\\', "/");
            if let Some(root) = root {
                let root = root.replace('\\', "/");
                let root = root.trim_end_matches('/');
                // At a folder boundary only; Windows paths compare without
                // case (`c:/src` is `C:/Src`).
                let head = pattern.get(..root.len()).unwrap_or_default();
                let same = head == root || (case_insensitive && head.eq_ignore_ascii_case(root));
                let rest = &pattern[head.len()..];
                if same && !root.is_empty() && (rest.is_empty() || rest.starts_with('/')) {
                    pattern = rest.trim_start_matches('/').to_string();
                }
            }
            let pattern = pattern.trim_start_matches("./").to_string();
            // glob's syntax is minimatch's with nobrace: braces are plain
            // characters, `**` is a whole path component.
            let glob = Pattern::new(&pattern).map_err(|e| {
                anyhow!(
                    "Input '{input}': '{line}' is not a valid pattern: {}",
                    e.msg
                )
            })?;
            rules.push((include, glob));
        }
        let options = MatchOptions {
            case_sensitive: !case_insensitive,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        Ok(Patterns { rules, options })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|(include, _)| !include)
    }

    /// Whether a path relative to the root (with `/`) is selected.
    pub fn matches(&self, rel: &str) -> bool {
        let mut selected = false;
        for (include, glob) in &self.rules {
            if *include != selected && glob.matches_with(rel, self.options) {
                selected = *include;
            }
        }
        selected
    }

    /// Whether any rule matches (for `glob=value` lines, where there is only one).
    pub fn any(&self, rel: &str) -> bool {
        self.matches(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lines: &[&str]) -> Patterns {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        Patterns::parse("globExpressions", &lines, Some("/src"), false).unwrap()
    }

    #[test]
    fn minimatch_semantics_table() {
        // (patterns, path, selected)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["**"], "a/b/c.txt", true),
            (&["**"], ".hidden/.env", true),
            (&["*.txt"], "a.txt", true),
            (&["*.txt"], "dir/a.txt", false),
            (&["**/*.txt"], "a.txt", true),
            (&["**/*.txt"], "x/y/a.txt", true),
            (&["**", "!**/*.map"], "js/app.js.map", false),
            (&["**", "!**/*.map"], "js/app.js", true),
            (&["**", "!logs/**", "logs/keep.txt"], "logs/keep.txt", true),
            (&["**", "!logs/**", "logs/keep.txt"], "logs/drop.txt", false),
            (&["{a,b}.txt"], "a.txt", false),
            (&["{a,b}.txt"], "{a,b}.txt", true),
            (&["# comment", "a.txt"], "a.txt", true),
            (&["/src/site/**"], "site/index.html", true),
            (&["./site/*.html"], "site/index.html", true),
            (&["A.TXT"], "a.txt", false),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(p(patterns).matches(path), *want, "{patterns:?} on {path}");
        }
    }

    #[test]
    fn case_insensitive_when_asked() {
        let lines = vec!["A.TXT".to_string()];
        assert!(
            Patterns::parse("g", &lines, None, true)
                .unwrap()
                .matches("a.txt")
        );
    }

    /// On Windows the agent passes `C:\\src` and users write patterns
    /// with either slash and any case of the drive and folders.
    #[test]
    fn windows_absolute_patterns_are_rooted_at_the_source_folder() {
        let lines = vec![
            r"c:\Build\Out\app\**\*.js".to_string(),
            r"!C:/build/out/app/skip/**".to_string(),
            r"C:\Build\Outside\x.js".to_string(),
        ];
        let p = Patterns::parse("g", &lines, Some(r"C:\build\out\"), true).unwrap();
        assert!(p.matches("app/main.js"));
        assert!(p.matches("app/sub/a.js"));
        assert!(!p.matches("app/skip/a.js"));
        assert!(!p.matches("main.js"));
        // A sibling folder that shares the prefix is not the source folder.
        assert!(!p.matches("x.js"));
        assert!(!p.matches("side/x.js"));
    }

    #[test]
    fn a_bad_pattern_names_the_input() {
        let lines = vec!["a[".to_string()];
        let e = Patterns::parse("globExpressions", &lines, None, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Input 'globExpressions': 'a[' is not a valid pattern")
        );
    }
}
