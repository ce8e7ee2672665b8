//! Text that came from someone else, made safe to print (a leaf module).

/// `s` with every control character (C0, DEL, C1, and the bidirectional overrides that make a
/// terminal show text in another order) replaced by a `\u{…}` escape, so that a record name, a
/// purpose or an id typed by another party cannot move a terminal's cursor, change its title or
/// hide text when printed.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::escape("a\x1b[2Jb\n\u{202e}c"),
            "a\\u{1b}[2Jb\\u{a}\\u{202e}c"
        );
        assert_eq!(super::escape("labs.json"), "labs.json");
    }
}
