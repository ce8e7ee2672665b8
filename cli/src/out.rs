//! Output: human text or JSON, never raw control characters from someone else's data, and a
//! quiet exit when the reader of our output goes away (`medshare … | head`).

use std::io::Write;

/// Text from the chain or from another party (names, media types, licences, notes), made safe
/// to print on a terminal.
pub fn esc(s: &str) -> String {
    medshare::text::escape(s)
}

pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `human` (or `json` with `--json`). A closed pipe ends the process quietly.
    pub fn emit(&self, human: impl AsRef<str>, json: serde_json::Value) {
        if self.json {
            print_line(&json.to_string());
        } else {
            print_line(human.as_ref());
        }
    }
}

/// Writes a line to stdout; if the reader is gone (EPIPE), exits at once and quietly, as
/// command-line tools do.
pub fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{s}").and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("medshare: error: writing the output: {e}");
        std::process::exit(1);
    }
}
