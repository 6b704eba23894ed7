//! The layer check: every module of reef-core imports only from its own layer or the layers
//! below it, and no two top-level modules import each other, however the import is spelled —
//! a `use`, an inline `crate::…` or `super::…` path, a name that arrives through `use crate::*`
//! (the crate root re-exports the domain, ports, errors, money and time), or a path inside a
//! macro's arguments. The map of layers is `LAYERS` below and `docs/architecture.md`.

use quote::ToTokens;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// reef-core's top-level modules and their layers (0 = leaves). A module missing here fails the
/// check: a new module must say where it belongs.
const LAYERS: &[(&str, u8)] = &[
    // 0. leaves
    ("time", 0),
    ("money", 0),
    ("error", 0),
    ("secret", 0),
    ("signature", 0),
    ("embed", 0),
    ("git", 0),
    // 1. model: domain, ports and the pure rules
    ("domain", 1),
    ("ports", 1),
    ("rules", 1),
    ("books", 1),
    ("memory", 1),
    ("settings", 1),
    // 2.
    ("config", 2),
    // 3. operations
    ("factory", 3),
    // 4. services
    ("toolbox", 4),
    ("engine", 4),
    ("links", 4),
    ("stripe", 4),
    ("sampler", 4),
    ("doctor", 4),
];

/// One import of `to` by a file of `from`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// Everything the check found wrong, one line each.
pub fn check(src: &Path) -> Vec<String> {
    let files = rust_files(src);
    let roots = root_modules(&src.join("lib.rs"));
    let exports = root_exports(src, &src.join("lib.rs"));
    let mut problems = vec![];
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    for m in &roots {
        if !layers.contains_key(m.as_str()) {
            problems.push(format!("module `{m}` has no layer: add it to LAYERS in tests/it/layers.rs and to docs/architecture.md"));
        }
    }
    for (m, _) in LAYERS {
        if !roots.contains(*m) {
            problems.push(format!("LAYERS names `{m}`, which lib.rs does not declare: remove or rename it"));
        }
    }
    let mut edges = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let module = module_path(rel);
        let Some(unit) = module.first().cloned() else { continue }; // lib.rs declares, it does not import
        let text = std::fs::read_to_string(f).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut v =
            Imports { file: rel.display().to_string(), module, roots: &roots, exports: &exports, found: vec![], locals: locals(&ast) };
        v.visit_file(&ast);
        for (to, at) in v.found {
            if to != unit {
                edges.insert(Edge { from: unit.clone(), to, at });
            }
        }
    }
    for e in &edges {
        if let (Some(a), Some(b)) = (layers.get(e.from.as_str()), layers.get(e.to.as_str())) {
            if b > a {
                problems.push(format!(
                    "upward import at {}: `{}` (layer {a}) imports `{}` (layer {b}); move the shared part down or the importer up",
                    e.at, e.from, e.to
                ));
            }
        }
    }
    problems.extend(cycles(&edges));
    problems
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `factory/mod.rs` → [factory]; `engine/worker.rs` → [engine, worker]; `lib.rs` → [].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

fn root_modules(lib: &Path) -> BTreeSet<String> {
    let ast = syn::parse_file(&std::fs::read_to_string(lib).unwrap()).unwrap();
    ast.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// The names the crate root re-exports (`pub use domain::task::*` and the like) → the
/// top-level module that defines each.
fn root_exports(src: &Path, lib: &Path) -> BTreeMap<String, String> {
    let ast = syn::parse_file(&std::fs::read_to_string(lib).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for item in &ast.items {
        let syn::Item::Use(u) = item else { continue };
        let mut paths = vec![];
        flatten(&u.tree, vec![], &mut paths);
        for (p, name) in paths {
            let Some(unit) = p.first() else { continue };
            match name {
                // A glob: every public item of the module file it names.
                None => {
                    let file = module_file(src, &p);
                    let text =
                        std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{} for `pub use {}::*`", file.display(), p.join("::")));
                    for n in public_items(&syn::parse_file(&text).unwrap()) {
                        out.insert(n, unit.clone());
                    }
                }
                Some(n) => {
                    out.insert(n, unit.clone());
                }
            }
        }
    }
    out
}

fn module_file(src: &Path, p: &[String]) -> PathBuf {
    let base = src.join(p.join("/"));
    let file = base.with_extension("rs");
    if file.exists() {
        file
    } else {
        base.join("mod.rs")
    }
}

fn public_items(f: &syn::File) -> Vec<String> {
    f.items
        .iter()
        .filter_map(|i| {
            let (vis, name) = match i {
                syn::Item::Struct(x) => (&x.vis, x.ident.to_string()),
                syn::Item::Enum(x) => (&x.vis, x.ident.to_string()),
                syn::Item::Trait(x) => (&x.vis, x.ident.to_string()),
                syn::Item::Fn(x) => (&x.vis, x.sig.ident.to_string()),
                syn::Item::Type(x) => (&x.vis, x.ident.to_string()),
                syn::Item::Const(x) => (&x.vis, x.ident.to_string()),
                syn::Item::Static(x) => (&x.vis, x.ident.to_string()),
                _ => return None,
            };
            matches!(vis, syn::Visibility::Public(_)).then_some(name)
        })
        .collect()
}

/// Names a file defines itself (a local `Event` or a child `mod engine` shadows the root's).
fn locals(f: &syn::File) -> BTreeSet<String> {
    struct L(BTreeSet<String>);
    impl<'a> Visit<'a> for L {
        fn visit_item(&mut self, i: &'a syn::Item) {
            let n = match i {
                syn::Item::Struct(x) => Some(&x.ident),
                syn::Item::Enum(x) => Some(&x.ident),
                syn::Item::Trait(x) => Some(&x.ident),
                syn::Item::Fn(x) => Some(&x.sig.ident),
                syn::Item::Type(x) => Some(&x.ident),
                syn::Item::Const(x) => Some(&x.ident),
                syn::Item::Static(x) => Some(&x.ident),
                // A child module shadows a top-level one of the same name (`config::engine`).
                syn::Item::Mod(x) => Some(&x.ident),
                _ => None,
            };
            if let Some(n) = n {
                self.0.insert(n.to_string());
            }
            syn::visit::visit_item(self, i);
        }
    }
    let mut l = L(BTreeSet::new());
    l.visit_file(f);
    l.0
}

/// A use tree as (path, last name): `None` for a glob, the imported name otherwise.
fn flatten(t: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    match t {
        syn::UseTree::Path(p) => {
            let mut v = prefix;
            v.push(p.ident.to_string());
            flatten(&p.tree, v, out);
        }
        syn::UseTree::Name(n) => {
            let mut v = prefix;
            let name = n.ident.to_string();
            if name != "self" {
                v.push(name.clone());
            }
            out.push((v, Some(name)));
        }
        syn::UseTree::Rename(r) => {
            let mut v = prefix;
            v.push(r.ident.to_string());
            out.push((v, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix, None)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten(t, prefix.clone(), out);
            }
        }
    }
}

struct Imports<'a> {
    file: String,
    /// The module the visitor is in (grows inside inline `mod x { … }`).
    module: Vec<String>,
    roots: &'a BTreeSet<String>,
    exports: &'a BTreeMap<String, String>,
    locals: BTreeSet<String>,
    found: Vec<(String, String)>,
}

impl Imports<'_> {
    /// The top-level module a path names, if it names one of this crate's.
    fn unit_of(&self, segs: &[String]) -> Option<String> {
        let first = segs.first()?;
        let abs: Vec<String> = match first.as_str() {
            "crate" => segs[1..].to_vec(),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                let mut base = self.module.clone();
                base.truncate(base.len().saturating_sub(ups));
                base.extend(segs[ups..].iter().cloned());
                base
            }
            "self" => {
                let mut base = self.module.clone();
                base.extend(segs[1..].iter().cloned());
                base
            }
            // A bare path: a top-level module (`config::Config`, in scope through `use crate::*`;
            // alone, `config` is a variable) or a re-exported name the root glob brings in.
            // Over-approximates only for names the file does not define itself.
            _ if self.locals.contains(first) => return None,
            _ if (self.roots.contains(first) && segs.len() > 1) || self.exports.contains_key(first) => segs.to_vec(),
            _ => return None,
        };
        let head = abs.first()?;
        if self.roots.contains(head) {
            Some(head.clone())
        } else {
            self.exports.get(head).cloned()
        }
    }

    fn note(&mut self, segs: &[String], line: usize) {
        if let Some(u) = self.unit_of(segs) {
            self.found.push((u, format!("{}:{line} `{}`", self.file, segs.join("::"))));
        }
    }

    /// Paths inside a macro's tokens (`format!("{}", crate::time::fmt_ts(t))`, `json!({…})`).
    fn scan_tokens(&mut self, ts: proc_macro2::TokenStream) {
        let toks: Vec<proc_macro2::TokenTree> = ts.into_iter().collect();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                proc_macro2::TokenTree::Group(g) => self.scan_tokens(g.stream()),
                proc_macro2::TokenTree::Ident(id) => {
                    let line = id.span().start().line;
                    let mut segs = vec![id.to_string()];
                    let mut j = i + 1;
                    // ident (:: ident)*
                    loop {
                        let colons = matches!((&toks.get(j), &toks.get(j + 1)),
                            (Some(proc_macro2::TokenTree::Punct(a)), Some(proc_macro2::TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':');
                        match (colons, toks.get(j + 2)) {
                            (true, Some(proc_macro2::TokenTree::Ident(n))) => {
                                segs.push(n.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    self.note(&segs, line);
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let line = u.use_token.span.start().line;
        let mut paths = vec![];
        flatten(&u.tree, vec![], &mut paths);
        for (p, _) in paths {
            self.note(&p, line);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p.segments.first().map(|s| s.ident.span().start().line).unwrap_or(0);
        self.note(&segs, line);
        syn::visit::visit_path(self, p);
    }

    /// `#[serde(with = "crate::time::ts")]` names a module in a string.
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        let line = a.pound_token.span.start().line;
        let text = a.meta.to_token_stream().to_string();
        for part in text.split('"').skip(1).step_by(2) {
            if part.starts_with("crate::") || part.starts_with("super::") {
                let segs: Vec<String> = part.split("::").map(str::to_string).collect();
                self.note(&segs, line);
            }
        }
        syn::visit::visit_attribute(self, a);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.scan_tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// Groups of top-level modules that import each other, each with one import per step.
fn cycles(edges: &BTreeSet<Edge>) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
    }
    // A module is in a cycle with `m` when each reaches the other.
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(n) = stack.pop() {
            for next in graph.get(n.as_str()).into_iter().flatten() {
                if seen.insert(next.to_string()) {
                    stack.push(next.to_string());
                }
            }
        }
        seen
    };
    let mut out = vec![];
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if done.contains(*m) {
            continue;
        }
        let from_m = reach(m);
        let group: BTreeSet<String> = from_m.iter().filter(|o| reach(o).contains(*m)).cloned().collect();
        if group.len() > 1 {
            let steps: Vec<String> = edges
                .iter()
                .filter(|e| group.contains(&e.from) && group.contains(&e.to) && e.from != e.to)
                .fold(BTreeMap::new(), |mut acc: BTreeMap<(String, String), String>, e| {
                    acc.entry((e.from.clone(), e.to.clone())).or_insert_with(|| e.at.clone());
                    acc
                })
                .into_iter()
                .map(|((a, b), at)| format!("{a} → {b} ({at})"))
                .collect();
            out.push(format!("import cycle among {{{}}}: {}", group.iter().cloned().collect::<Vec<_>>().join(", "), steps.join("; ")));
            done.extend(group);
        }
    }
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn reef_core_layers_point_one_way() {
    let problems = check(&src_dir());
    assert!(problems.is_empty(), "reef-core's layers (docs/architecture.md):\n{}", problems.join("\n"));
}

/// Copies the real source, plants one import, and returns what the check says.
fn planted(file: &str, code: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    copy(&src_dir(), dir.path());
    let p = dir.path().join(file);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(code);
    std::fs::write(&p, text).unwrap();
    check(dir.path())
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn a_planted_upward_import_fails_the_check_however_it_is_spelled() {
    let cases = [
        ("rules/policy.rs", "\nuse crate::factory::Factory;\n", "`rules` (layer 1) imports `factory` (layer 3)"),
        ("rules/policy.rs", "\nuse crate::{engine::{worker}, Usd};\n", "`rules` (layer 1) imports `engine` (layer 4)"),
        ("time.rs", "\nfn planted() -> Option<crate::config::Config> { None }\n", "`time` (layer 0) imports `config` (layer 2)"),
        ("money.rs", "\nuse crate::*;\nfn planted(_: &Task) {}\n", "`money` (layer 0) imports `domain` (layer 1)"),
        (
            "domain/event.rs",
            "\nfn planted() -> String { format!(\"{:?}\", crate::factory::Hold::Pause) }\n",
            "`domain` (layer 1) imports `factory` (layer 3)",
        ),
        (
            "domain/event.rs",
            "\nmod planted { fn f(_: super::super::super::config::Config) {} }\n",
            "`domain` (layer 1) imports `config` (layer 2)",
        ),
    ];
    for (file, code, want) in cases {
        let problems = planted(file, code);
        assert!(
            problems.iter().any(|p| p.contains(want) && p.contains(file)),
            "planting {code:?} in {file} should be reported as {want:?}; the check said:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn a_planted_cycle_between_services_fails_the_check() {
    // sampler already imports engine (its error type); engine importing sampler closes a loop.
    let problems = planted("engine/dispatcher.rs", "\n#[allow(unused_imports)]\nuse crate::sampler::Sampler;\n");
    assert!(
        problems.iter().any(|p| p.starts_with("import cycle among {engine, sampler}")),
        "engine ⇄ sampler should be reported as a cycle; the check said:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_module_without_a_layer_fails_the_check() {
    let problems = planted("lib.rs", "\npub mod planted;\n");
    assert!(problems.iter().any(|p| p.contains("module `planted` has no layer")), "{}", problems.join("\n"));
}
