//! `##vso[area.event k=v;...]message` logging commands: the agent's exact
//! escaping, and a parser that follows the agent's `Command.TryParse`.

/// Escapes a property value: `%`, CR, LF, `]` and `;` (azure-pipelines-task-lib
/// `escapedata`/`escape`). `%` must go first.
pub fn escape_property(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%AZP25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ']' => out.push_str("%5D"),
            ';' => out.push_str("%3B"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a message (the text after `]`): `%`, CR and LF.
pub fn escape_message(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%AZP25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// The agent's `CommandStringConvertor.Unescape`: the four mappings first,
/// `%AZP25` last.
pub fn unescape(value: &str) -> String {
    value
        .replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%AZP25", "%")
}

/// Formats one command line (without the trailing newline). Properties with
/// an empty value are left out, as task-lib does.
pub fn format(command: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("##vso[{command}");
    let mut first = true;
    for (key, value) in properties.iter().filter(|(_, v)| !v.is_empty()) {
        line.push(if first { ' ' } else { ';' });
        first = false;
        line.push_str(key);
        line.push('=');
        line.push_str(&escape_property(value));
    }
    if !first {
        line.push(';');
    }
    line.push(']');
    line.push_str(&escape_message(message));
    line
}

/// A command as the agent sees it after parsing and unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `area.event`, as written.
    pub name: String,
    pub properties: Vec<(String, String)>,
    pub message: String,
}

impl Command {
    /// A property by case-insensitive key, as the agent looks it up.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Parses a line the way the agent does: `##vso[` anywhere in the line, the
/// properties end at the first `]`, the name is `area.event`, properties are
/// split on `;` (empty items dropped) and then on the first `=`.
pub fn parse(line: &str) -> Option<Command> {
    let start = line.find("##vso[")? + "##vso[".len();
    let rest = &line[start..];
    let end = rest.find(']')?;
    let (head, message) = (&rest[..end], &rest[end + 1..]);
    let (name, props) = match head.find(' ') {
        Some(i) => (&head[..i], &head[i + 1..]),
        None => (head, ""),
    };
    if name.split('.').count() != 2 {
        return None;
    }
    let properties = props
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), unescape(v)),
            None => (p.to_string(), String::new()),
        })
        .collect();
    Some(Command {
        name: name.to_string(),
        properties,
        message: unescape(message.trim_end_matches(['\r', '\n'])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_task_lib() {
        assert_eq!(
            format(
                "task.setvariable",
                &[("variable", "a;b"), ("issecret", "true"), ("isoutput", "")],
                "50%\nx]"
            ),
            "##vso[task.setvariable variable=a%3Bb;issecret=true;]50%AZP25%0Ax]"
        );
        assert_eq!(format("task.setsecret", &[], "s"), "##vso[task.setsecret]s");
    }

    #[test]
    fn parse_reads_what_format_writes() {
        let c = parse("junk ##vso[task.complete result=Failed;]it broke").unwrap();
        assert!(c.is("task.complete"));
        assert_eq!(c.property("RESULT"), Some("Failed"));
        assert_eq!(c.message, "it broke");
        assert!(parse("##vso[nodot x=1]m").is_none());
        assert!(parse("plain text").is_none());
    }

    proptest! {
        #[test]
        fn any_message_survives_escaping(s in any::<String>()) {
            prop_assert_eq!(unescape(&escape_message(&s)), s);
        }

        #[test]
        fn any_property_survives_escaping(s in any::<String>()) {
            let escaped = escape_property(&s);
            prop_assert!(!escaped.contains([';', ']', '\r', '\n']));
            prop_assert_eq!(unescape(&escaped), s);
        }

        #[test]
        fn a_property_never_ends_a_command_early(
            a in any::<String>(), b in any::<String>(), msg in any::<String>()
        ) {
            let line = format("task.setvariable", &[("variable", &a), ("value", &b)], &msg);
            prop_assert!(!line.contains('\n') && !line.contains('\r'));
            let c = parse(&line).expect("parses");
            let mut want = Vec::new();
            for (k, v) in [("variable", &a), ("value", &b)] {
                if !v.is_empty() { want.push((k.to_string(), v.clone())); }
            }
            prop_assert_eq!(c.properties, want);
            prop_assert_eq!(c.message, msg);
        }
    }
}
