//! Text files given to a task (templates, parameter files, scripts): read
//! whole, checked to be text, with errors that name the file and the line.
//!
//! A YAML parser stops at a NUL byte and reads what came before as the whole
//! document; a file of binary or control characters must be an error, never
//! "no content".

use std::path::Path;

/// Where the first character that has no place in a text file is, as
/// "line L, column C (U+XXXX)": C0 controls other than tab, LF and CR, DEL,
/// and the C1 controls other than NEL (the set YAML 1.2 forbids).
pub fn first_control_char(text: &str) -> Option<String> {
    let mut line = 1;
    let mut col = 0;
    for c in text.chars() {
        col += 1;
        match c {
            '\n' => {
                line += 1;
                col = 0;
            }
            '\t' | '\r' | '\u{85}' => {}
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                return Some(format!("line {line}, column {col} (U+{:04X})", c as u32));
            }
            _ => {}
        }
    }
    None
}

/// Checks `text` (an inline input or a file's content); `source` names it.
pub fn check_text(text: &str, source: &str) -> Result<(), String> {
    match first_control_char(text) {
        Some(at) => Err(format!(
            "{source} is not a text file: it has a control character at {at}. \
             Check that it is the right file and that it is saved as UTF-8 text."
        )),
        None => Ok(()),
    }
}

/// Reads a text file for the input `input`: UTF-8 (a byte-order mark is
/// dropped), without control characters. Errors name the input, the file
/// and the line.
pub fn read_text_file(path: &Path, input: &str) -> Result<String, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("Input '{input}': the file '{shown}' does not exist")
        } else {
            format!("Input '{input}': reading '{shown}': {e}")
        }
    })?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            return Err(format!(
                "Input '{input}': '{shown}' is not UTF-8 text (an invalid byte on line {line}). \
                 Save it as UTF-8."
            ));
        }
    };
    check_text(&text, &format!("Input '{input}': '{shown}'"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_with_their_place() {
        assert_eq!(first_control_char("a: 1\r\n\tb: 2\n"), None);
        assert_eq!(first_control_char("é ü 漢字 \u{85}"), None);
        assert_eq!(
            first_control_char("A: 1\nB: 2\0C: 3").as_deref(),
            Some("line 2, column 5 (U+0000)")
        );
        assert_eq!(
            first_control_char("\u{1b}[31m").as_deref(),
            Some("line 1, column 1 (U+001B)")
        );
        assert!(first_control_char("x\u{7f}").is_some());
        assert!(first_control_char("x\u{9b}").is_some());
    }

    #[test]
    fn files_are_utf8_text_without_a_bom() {
        let dir = std::env::temp_dir().join(format!("vsts-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok.yml");
        std::fs::write(&ok, b"\xef\xbb\xbfA: 1\r\n").unwrap();
        assert_eq!(read_text_file(&ok, "f").unwrap(), "A: 1\r\n");
        let latin1 = dir.join("latin1.yml");
        std::fs::write(&latin1, b"A: 1\nB: caf\xe9\n").unwrap();
        let e = read_text_file(&latin1, "f").unwrap_err();
        assert!(
            e.contains("is not UTF-8 text (an invalid byte on line 2)"),
            "{e}"
        );
        let binary = dir.join("bin.yml");
        std::fs::write(&binary, b"\0\0\0\x01").unwrap();
        let e = read_text_file(&binary, "f").unwrap_err();
        assert!(e.starts_with("Input 'f': '"), "{e}");
        assert!(
            e.contains("control character at line 1, column 1 (U+0000)"),
            "{e}"
        );
        let e = read_text_file(&dir.join("none"), "f").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
