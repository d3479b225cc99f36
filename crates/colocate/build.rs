//! Embeds the example application (examples/psa) so `colocate demo` works from an installed
//! binary: every migration file, the configuration and the sample data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("sql" | "toml")) {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.join("../../examples/psa");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut code = String::from("pub const EXAMPLE: &[(&str, &str)] = &[\n");
    for f in &files {
        let abs = root.join(f).canonicalize().expect("example file");
        let _ = writeln!(
            code,
            "    ({:?}, include_str!({:?})),",
            f.to_string_lossy(),
            abs.to_string_lossy()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("example_files.rs");
    std::fs::write(out, code).expect("write example_files.rs");
}
