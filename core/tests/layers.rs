//! The crate's modules form layers: no source file depends on a file of a higher layer, and the
//! files' dependency graph has no cycle. Checked on the source text: every `use crate::…`,
//! `super::…` and inline `crate::…` path is resolved to the file that defines it (re-exports —
//! `pub use`, `mod` declarations — are not dependencies).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level module (lower layers never use higher ones).
const LAYERS: &[(&str, u8)] = &[
    ("platform", 0),
    ("limits", 0),
    ("rule", 0),
    ("text", 0),
    ("serde_util", 0),
    ("fsutil", 0),
    ("cid", 1),
    ("cbor", 2),
    ("error", 2),
    ("identity", 3),
    ("record", 3),
    ("envelope", 4),
    ("net", 5),
    ("store", 6),
    ("unixfs", 6),
    ("car", 6),
    ("ledger", 7),
    ("offload", 7),
    ("sequencer", 8),
    ("vault", 9),
    ("fhir", 10),
    ("fuzz", 10),
    ("lib", 10),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file as its module path (`store::kubo`, `ledger`, `lib`).
fn files(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut pre = prefix.to_vec();
            pre.push(name);
            files(&p, &pre, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let mut m = prefix.to_vec();
            if name != "mod" {
                m.push(name);
            }
            if m.is_empty() {
                m.push("lib".into());
            }
            out.insert(m, p);
        }
    }
}

/// The paths a file refers to, as segment lists relative to the crate root.
fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let mut refs = BTreeSet::new();
    let code: String = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//")
                || t.starts_with("pub use ")
                || t.starts_with("pub mod ")
                || t.starts_with("mod "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    // `use crate::a::{b, c::d}` groups are flattened by taking each `crate::`/`super::` path up
    // to its first non-identifier character, plus the names inside a brace that follows.
    let bytes = code.as_bytes();
    for (start, kind) in find_all(&code, "crate::")
        .into_iter()
        .map(|i| (i, "crate"))
        .chain(find_all(&code, "super::").into_iter().map(|i| (i, "super")))
    {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = &code[start + kind.len() + 2..];
        let base: Vec<String> = match kind {
            "crate" => Vec::new(),
            _ => {
                let mut m = module.to_vec();
                // `super` of a file `a::b` (a/b.rs) is `a`.
                m.pop();
                m
            }
        };
        let mut path = base.clone();
        let mut it = rest.chars().peekable();
        let mut seg = String::new();
        loop {
            match it.next() {
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => seg.push(c),
                Some(':') if it.peek() == Some(&':') => {
                    it.next();
                    path.push(std::mem::take(&mut seg));
                }
                Some('{') => {
                    // A group: each member extends the path so far.
                    let group: String = it.by_ref().take_while(|&c| c != '}').collect();
                    for member in group.split(',') {
                        let mut p = path.clone();
                        p.extend(
                            member
                                .trim()
                                .split("::")
                                .map(|s| s.trim().to_owned())
                                .filter(|s| !s.is_empty() && s != "self"),
                        );
                        refs.insert(p);
                    }
                    break;
                }
                _ => {
                    if !seg.is_empty() {
                        path.push(seg);
                    }
                    refs.insert(path);
                    break;
                }
            }
        }
    }
    refs
}

fn find_all(hay: &str, needle: &str) -> Vec<usize> {
    hay.match_indices(needle).map(|(i, _)| i).collect()
}

/// The file a path resolves to: its longest prefix that is a module.
fn resolve(path: &[String], modules: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.contains_key(&path[..n]).then(|| path[..n].to_vec()))
}

#[test]
fn modules_form_layers_without_cycles() {
    let mut modules = BTreeMap::new();
    files(&src(), &[], &mut modules);
    let rank: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut violations = Vec::new();
    for (m, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        let top = m[0].as_str();
        let r = *rank
            .get(top)
            .unwrap_or_else(|| panic!("module `{top}` has no layer in tests/layers.rs"));
        for reference in references(m, &text) {
            let Some(target) = resolve(&reference, &modules) else {
                continue;
            };
            if target == *m {
                continue;
            }
            let tr = rank[target[0].as_str()];
            if tr > r {
                violations.push(format!(
                    "{} (layer {r}) uses {} (layer {tr})",
                    m.join("::"),
                    target.join("::")
                ));
            }
            graph.entry(m.clone()).or_default().insert(target);
        }
    }
    assert!(
        violations.is_empty(),
        "upward dependencies:\n{}",
        violations.join("\n")
    );
    // Cycle detection (depth-first, colouring).
    fn visit(
        n: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == n).unwrap_or(0);
                return Some(stack[at..].to_vec());
            }
            _ => {}
        }
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in modules.keys() {
        if let Some(cycle) = visit(n, &graph, &mut state, &mut Vec::new()) {
            let names: Vec<String> = cycle.iter().map(|c| c.join("::")).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
    // The check sees real edges (a sanity check that the parser works).
    assert!(
        graph[&vec!["vault".to_string()]]
            .contains(&vec!["ledger".to_string(), "chain".to_string()])
    );
    assert!(
        graph[&vec!["store".to_string(), "kubo".to_string()]].contains(&vec!["car".to_string()])
    );
}
