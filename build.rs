//! Embeds the shipped rule pack (`detections/**/*.yml` and `detections/mappings/*.yml`) so the
//! binary detects with it wherever it runs. Generated: `$OUT_DIR/pack.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let pack = root.join("detections");
    println!("cargo:rerun-if-changed=detections");
    let mut files = Vec::new();
    walk(&pack, &mut files);
    files.sort();
    let mut rules = String::new();
    let mut mappings = String::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        // Relative to the manifest at compile time, not this run's absolute path: a target
        // folder shared by several clones must not embed another clone's files.
        let line = format!(
            "    ({rel:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {rel:?}))),\n"
        );
        if rel.starts_with("detections/mappings/") {
            mappings.push_str(&line);
        } else {
            rules.push_str(&line);
        }
    }
    let mut src = String::new();
    let _ = writeln!(
        src,
        "/// The shipped rules: (path in the repository, YAML)."
    );
    let _ = writeln!(src, "pub const RULES: &[(&str, &str)] = &[\n{rules}];");
    let _ = writeln!(
        src,
        "/// The shipped field mappings: (path in the repository, YAML)."
    );
    let _ = writeln!(
        src,
        "pub const MAPPINGS: &[(&str, &str)] = &[\n{mappings}];"
    );
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("pack.rs");
    if let Err(e) = std::fs::write(&out, src) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
