//! The module graph of every crate of the workspace has no circles.
//!
//! A module depends on another when it names it in a `crate::` or `super::` path (imports and
//! paths in code; comments are ignored), and a parent depends on the children it declares.
//! Counting both means a child may not reach back into its parent module: shared items live in
//! a sibling module, so that every crate reads one way, from its routes down to its leaves.
//! Unit test modules (`#[cfg(test)] mod tests`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`a::b`, "" for the crate root) → the modules it depends on.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file below `src` as (module path, text).
fn sources(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path: PathBuf = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .expect("below src")
                    .with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&path).expect("a readable source");
                out.push((parts.join("::"), text));
            }
        }
    }
    out
}

/// The dependency graph of one crate's modules.
fn graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (module, text) in files {
        if module == "tests" || module.starts_with("tests::") {
            continue;
        }
        let code = code_of(text);
        let parent = parent_of(module);
        for (base, rest) in [("crate::", String::new()), ("super::", parent)] {
            for path in paths_after(&code, base) {
                let full = if rest.is_empty() {
                    path
                } else {
                    format!("{rest}::{path}")
                };
                if let Some(target) = resolve(&modules, &full)
                    && target != *module
                {
                    graph.entry(module.clone()).or_default().insert(target);
                }
            }
        }
        if !module.is_empty() && modules.contains(&parent_of(module)) {
            graph
                .entry(parent_of(module))
                .or_default()
                .insert(module.clone());
        }
    }
    graph
}

/// The text without comment lines and without the unit test module at its end.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            break;
        }
        if !t.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn parent_of(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or_else(String::new, |(p, _)| p.to_owned())
}

/// The paths named after each `base`, with `{…}` groups expanded one level per item.
fn paths_after(code: &str, base: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(base) {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[i + base.len()..];
        if preceded_by_ident {
            continue;
        }
        expand("", rest, &mut out);
    }
    out
}

/// Reads one path (or group) at the start of `text`, prefixed with `prefix`.
fn expand(prefix: &str, text: &str, out: &mut Vec<String>) {
    let ident_len = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let path = text[..ident_len].trim_end_matches(':');
    let joined = match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}::{path}"),
    };
    let after = &text[ident_len..];
    if let Some(group) = after.strip_prefix('{') {
        let end = matching_brace(group);
        for item in split_top_level(&group[..end]) {
            expand(&joined, item.trim(), out);
        }
    } else if !joined.is_empty() {
        out.push(joined);
    }
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

/// The longest module that `path` starts with.
fn resolve(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// The circles of `graph` (strongly connected sets of more than one module), each as a path.
fn find_circles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iterative enough for crates of a few hundred modules.
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        circles: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.circles.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.circles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_crate_has_a_module_circle() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut circles = Vec::new();
        let mut checked = 0;
        for entry in std::fs::read_dir(&crates).expect("the crates directory") {
            let dir = entry.expect("a crate").path();
            let src = dir.join("src");
            if !src.is_dir() {
                continue;
            }
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            let files = sources(&src);
            let deps = graph(&files);
            checked += deps.len();
            for circle in find_circles(&deps) {
                circles.push(format!(
                    "{}: {}",
                    name.as_deref().unwrap_or("?"),
                    circle.join(" → ")
                ));
            }
        }
        assert!(checked > 50, "only {checked} modules were read");
        assert!(
            circles.is_empty(),
            "module circles:\n{}",
            circles.join("\n")
        );
    }

    #[test]
    fn the_check_finds_a_circle_through_a_parent_and_through_imports() {
        let files = vec![
            ("".to_owned(), "mod a;\nmod b;".to_owned()),
            ("a".to_owned(), "use crate::b::X;".to_owned()),
            (
                "b".to_owned(),
                "// use crate::a::Y; a comment\nuse crate::{c, a::Z};".to_owned(),
            ),
            ("c".to_owned(), String::new()),
            (
                "c::d".to_owned(),
                "use super::E;\n#[cfg(test)]\nmod tests { use crate::a; }".to_owned(),
            ),
        ];
        let deps = graph(&files);
        assert_eq!(find_circles(&deps).len(), 2, "{deps:?}");
        let files = vec![
            ("a".to_owned(), "use crate::b::X;".to_owned()),
            ("b".to_owned(), "use crate::c;".to_owned()),
            ("c".to_owned(), String::new()),
        ];
        assert!(find_circles(&graph(&files)).is_empty());
    }
}
