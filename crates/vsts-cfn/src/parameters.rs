//! Template parameters from a file or inline text, JSON or YAML.
//!
//! Three shapes are accepted:
//! - CloudFormation's own list: `[{"ParameterKey": "Env", "ParameterValue":
//!   "prod"}, {"ParameterKey": "Db", "UsePreviousValue": true}]`;
//! - a map of names to values: `Env: prod`;
//! - CodePipeline's template configuration: `{"Parameters": {"Env": "prod"}}`.
//!
//! Values may be text, numbers or booleans (sent as written); a list of
//! them is joined with commas (for `CommaDelimitedList` parameters). JSON is
//! parsed by the YAML parser (JSON is YAML), so every error names a line.

use anyhow::{Result, anyhow, bail};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One parameter for CreateStack, UpdateStack or CreateChangeSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub key: String,
    /// `None` means UsePreviousValue.
    pub value: Option<String>,
}

impl Parameter {
    pub fn value(key: &str, value: &str) -> Self {
        Parameter {
            key: key.to_string(),
            value: Some(value.to_string()),
        }
    }

    pub fn previous(key: &str) -> Self {
        Parameter {
            key: key.to_string(),
            value: None,
        }
    }

    pub fn to_sdk(&self) -> aws_sdk_cloudformation::types::Parameter {
        let b = aws_sdk_cloudformation::types::Parameter::builder().parameter_key(&self.key);
        match &self.value {
            Some(v) => b.parameter_value(v),
            None => b.use_previous_value(true),
        }
        .build()
    }
}

/// A YAML node with the line it starts on.
#[derive(Debug, Clone)]
enum Node {
    /// Text as written; `plain` when unquoted (so `~` and `null` are null).
    Scalar {
        text: String,
        plain: bool,
        line: usize,
    },
    List {
        items: Vec<Node>,
        line: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        line: usize,
    },
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::List { line, .. } | Node::Map { line, .. } => *line,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a value",
            Node::List { .. } => "a list",
            Node::Map { .. } => "a map",
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true, .. } if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }
}

/// Builds the node tree of the first document from parser events.
#[derive(Default)]
struct Builder {
    stack: Vec<Node>,
    /// Map keys waiting for their value, one slot per open map.
    keys: Vec<Option<Node>>,
    root: Option<Node>,
    done: bool,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Node::List { items, .. }) => items.push(node),
            Some(Node::Map { entries, .. }) => {
                let slot = self.keys.last_mut().expect("a key slot per open map");
                match slot.take() {
                    None => *slot = Some(node),
                    Some(key) => entries.push((key, node)),
                }
            }
            Some(Node::Scalar { .. }) => unreachable!("scalars are never open"),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => self.push_value(Node::Scalar {
                text,
                plain: style == TScalarStyle::Plain,
                line,
            }),
            Event::SequenceStart(..) => self.stack.push(Node::List {
                items: Vec::new(),
                line,
            }),
            Event::MappingStart(..) => {
                self.stack.push(Node::Map {
                    entries: Vec::new(),
                    line,
                });
                self.keys.push(None);
            }
            Event::SequenceEnd => {
                if let Some(node) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::MappingEnd => {
                self.keys.pop();
                if let Some(node) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Alias(_) => self.push_value(Node::Scalar {
                text: "*alias".into(),
                plain: false,
                line,
            }),
            Event::DocumentEnd => self.done = self.root.is_some(),
            _ => {}
        }
    }
}

fn parse_tree(text: &str, source: &str) -> Result<Option<Node>> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        anyhow!(
            "{source} is neither valid JSON nor valid YAML: {} (line {}, column {})",
            e.info(),
            e.marker().line(),
            e.marker().col() + 1
        )
    })?;
    Ok(builder.root)
}

/// A parameter value: a scalar as written, or a list of scalars joined
/// with commas.
fn value_text(node: &Node, source: &str, key: &str) -> Result<String> {
    match node {
        n if n.is_null() => bail!(
            "{source}, line {}: parameter '{key}' has no value (write \"\" for an empty one)",
            n.line()
        ),
        Node::Scalar { text, .. } => Ok(text.clone()),
        Node::List { items, line } => {
            let mut parts = Vec::new();
            for item in items {
                match item {
                    Node::Scalar { text, .. } => parts.push(text.clone()),
                    other => bail!(
                        "{source}, line {}: parameter '{key}' is a list containing {}; only values can be listed",
                        other.line(),
                        other.kind()
                    ),
                }
            }
            let _ = line;
            Ok(parts.join(","))
        }
        Node::Map { line, .. } => bail!(
            "{source}, line {line}: parameter '{key}' is a map; a parameter value must be text, a number, a boolean or a list of them"
        ),
    }
}

fn scalar_key(node: &Node, source: &str) -> Result<String> {
    match node {
        Node::Scalar { text, .. } if !text.is_empty() => Ok(text.clone()),
        other => bail!(
            "{source}, line {}: a parameter name must be text, not {}",
            other.line(),
            other.kind()
        ),
    }
}

fn from_list(items: &[Node], source: &str) -> Result<Vec<Parameter>> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let Node::Map { entries, line } = item else {
            bail!(
                "{source}, line {}: entry {n} is {}; each entry must be a map with ParameterKey and ParameterValue",
                item.line(),
                item.kind()
            );
        };
        let mut key = None;
        let mut value = None;
        let mut previous = false;
        for (k, v) in entries {
            match scalar_key(k, source)?.as_str() {
                "ParameterKey" => key = Some(scalar_key(v, source)?),
                "ParameterValue" => value = Some(v),
                "UsePreviousValue" => {
                    previous = match v {
                        Node::Scalar { text, .. } if text.eq_ignore_ascii_case("true") => true,
                        Node::Scalar { text, .. } if text.eq_ignore_ascii_case("false") => false,
                        other => bail!(
                            "{source}, line {}: UsePreviousValue must be true or false",
                            other.line()
                        ),
                    }
                }
                // Written by `aws cloudformation describe-stacks`; harmless.
                "ResolvedValue" => {}
                other => bail!(
                    "{source}, line {}: entry {n} has an unknown field '{other}' (allowed: ParameterKey, ParameterValue, UsePreviousValue)",
                    k.line()
                ),
            }
        }
        let Some(key) = key else {
            bail!("{source}, line {line}: entry {n} has no ParameterKey");
        };
        let parameter = match (value, previous) {
            (Some(_), true) => bail!(
                "{source}, line {line}: parameter '{key}' has both a ParameterValue and UsePreviousValue: true"
            ),
            (Some(v), false) => Parameter::value(&key, &value_text(v, source, &key)?),
            (None, true) => Parameter::previous(&key),
            (None, false) => bail!(
                "{source}, line {line}: parameter '{key}' has neither a ParameterValue nor UsePreviousValue: true"
            ),
        };
        out.push(parameter);
    }
    Ok(out)
}

fn from_map(entries: &[(Node, Node)], source: &str) -> Result<Vec<Parameter>> {
    // CodePipeline's template configuration file.
    if let Some((_, Node::Map { entries: inner, .. })) = entries
        .iter()
        .find(|(k, _)| matches!(k, Node::Scalar { text, .. } if text == "Parameters"))
    {
        let others_are_config = entries.iter().all(|(k, _)| {
            matches!(k, Node::Scalar { text, .. } if ["Parameters", "Tags", "StackPolicy"].contains(&text.as_str()))
        });
        if others_are_config {
            return from_map(inner, source);
        }
    }
    let mut out = Vec::new();
    for (k, v) in entries {
        let key = scalar_key(k, source)?;
        out.push(Parameter::value(&key, &value_text(v, source, &key)?));
    }
    Ok(out)
}

/// Parses parameters; `source` names where they came from in errors (for
/// example "templateParametersFile 'params.json'").
pub fn parse(text: &str, source: &str) -> Result<Vec<Parameter>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The YAML parser ends the document at a NUL: "A: 1\0B: 2" would be one
    // parameter, and a binary file none at all.
    vsts_task::text::check_text(text, source).map_err(anyhow::Error::msg)?;
    let params = match parse_tree(text, source)? {
        None => Vec::new(),
        Some(n) if n.is_null() => Vec::new(),
        Some(Node::List { items, .. }) => from_list(&items, source)?,
        Some(Node::Map { entries, .. }) => from_map(&entries, source)?,
        Some(Node::Scalar { line, .. }) => bail!(
            "{source}, line {line}: expected a list of {{ParameterKey, ParameterValue}} entries or a map of parameter names to values"
        ),
    };
    check_duplicates(&params, source)?;
    Ok(params)
}

fn check_duplicates(params: &[Parameter], source: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in params {
        if !seen.insert(p.key.as_str()) {
            bail!("{source}: parameter '{}' is given more than once", p.key);
        }
    }
    Ok(())
}

/// `Key=Value` overrides on top of `params`: replaced in place, or added.
pub fn apply_overrides(params: &mut Vec<Parameter>, overrides: &[(String, String)]) {
    for (k, v) in overrides {
        match params.iter_mut().find(|p| &p.key == k) {
            Some(p) => p.value = Some(v.clone()),
            None => params.push(Parameter::value(k, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<Parameter> {
        parse(text, "test").unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn err(text: &str) -> String {
        parse(text, "params.yml").unwrap_err().to_string()
    }

    #[test]
    fn cloudformation_list_in_json_and_yaml() {
        let json = r#"[
            {"ParameterKey": "Env", "ParameterValue": "prod"},
            {"ParameterKey": "Port", "ParameterValue": 8080},
            {"ParameterKey": "Db", "UsePreviousValue": true}
        ]"#;
        let want = vec![
            Parameter::value("Env", "prod"),
            Parameter::value("Port", "8080"),
            Parameter::previous("Db"),
        ];
        assert_eq!(ok(json), want);
        let yaml = "- ParameterKey: Env\n  ParameterValue: prod\n- ParameterKey: Port\n  ParameterValue: 8080\n- ParameterKey: Db\n  UsePreviousValue: true\n";
        assert_eq!(ok(yaml), want);
    }

    #[test]
    fn maps_and_codepipeline_configuration() {
        assert_eq!(
            ok("Env: prod\nVersion: '1.10'\nSubnets: [a, b]\nEmpty: ''\n"),
            vec![
                Parameter::value("Env", "prod"),
                Parameter::value("Version", "1.10"),
                Parameter::value("Subnets", "a,b"),
                Parameter::value("Empty", ""),
            ]
        );
        assert_eq!(
            ok(r#"{"Parameters": {"Env": "dev", "Zero": "007"}, "Tags": {"team": "x"}}"#),
            vec![
                Parameter::value("Env", "dev"),
                Parameter::value("Zero", "007")
            ]
        );
        // Numbers stay as written.
        assert_eq!(
            ok("Version: 1.10\nCode: 007"),
            vec![
                Parameter::value("Version", "1.10"),
                Parameter::value("Code", "007")
            ]
        );
        assert!(ok("").is_empty());
        assert!(ok("# only a comment\n").is_empty());
    }

    /// Files written on Windows: CRLF line ends, a byte-order mark.
    #[test]
    fn windows_line_ends_and_bom() {
        let json = "\u{feff}[\r\n  {\"ParameterKey\": \"Env\", \"ParameterValue\": \"prod\"},\r\n  {\"ParameterKey\": \"Size\", \"ParameterValue\": \"007\"}\r\n]\r\n";
        let yaml = "\u{feff}Env: prod\r\nSize: '007'\r\n";
        let want = vec![
            Parameter::value("Env", "prod"),
            Parameter::value("Size", "007"),
        ];
        assert_eq!(ok(json), want);
        assert_eq!(ok(yaml), want);
        let e = err("Env: prod\r\nSize: [1\r\n");
        assert!(e.contains("line 2") || e.contains("line 3"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = err(
            "[\n {\"ParameterKey\": \"A\", \"ParameterValue\": \"1\"},\n {\"ParameterKey\": \"B\" \"ParameterValue\": \"2\"}\n]",
        );
        assert!(
            e.starts_with("params.yml is neither valid JSON nor valid YAML"),
            "{e}"
        );
        assert!(e.contains("line 3"), "{e}");

        let e =
            err("- ParameterKey: A\n  ParameterValue: x\n- ParameterKey: B\n  ParameterVaule: y\n");
        assert_eq!(
            e,
            "params.yml, line 4: entry 2 has an unknown field 'ParameterVaule' (allowed: ParameterKey, ParameterValue, UsePreviousValue)"
        );
        let e = err("- ParameterValue: x\n");
        assert_eq!(e, "params.yml, line 1: entry 1 has no ParameterKey");
        let e = err("A: 1\nB:\n  nested: map\n");
        assert!(
            e.starts_with("params.yml, line 3: parameter 'B' is a map"),
            "{e}"
        );
        let e = err("A: ~\n");
        assert!(e.contains("line 1: parameter 'A' has no value"), "{e}");
        let e = err("just text");
        assert!(e.contains("expected a list"), "{e}");
        let e = err("A: 1\0B: 2");
        assert!(e.contains("control character at line 1, column 5"), "{e}");
        assert!(err("\0\0\0").contains("is not a text file"));
        let e = err("A: 1\nA: 2\n");
        assert!(e.contains("'A' is given more than once"), "{e}");
        let e = err("- ParameterKey: A\n  ParameterValue: x\n  UsePreviousValue: true\n");
        assert!(
            e.contains("both a ParameterValue and UsePreviousValue"),
            "{e}"
        );
    }

    #[test]
    fn overrides_replace_and_add() {
        let mut p = vec![Parameter::value("A", "1"), Parameter::previous("B")];
        apply_overrides(
            &mut p,
            &[("B".into(), "2".into()), ("C".into(), "3".into())],
        );
        assert_eq!(
            p,
            vec![
                Parameter::value("A", "1"),
                Parameter::value("B", "2"),
                Parameter::value("C", "3")
            ]
        );
    }
}
