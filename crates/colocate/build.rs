//! Embeds the example application (examples/psa) so `colocate demo` works from an installed
//! binary: every migration file, the configuration and the sample data; and the git revision it
//! was built from, for `colocate --version`.

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

/// The short commit the binary is built from; `unknown` outside a git checkout (a crate built
/// from a package).
fn git_revision(manifest: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(manifest)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    // Rebuilt when HEAD moves (a commit, a checkout).
    if let Some(git_dir) = git_dir(&manifest) {
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD")) {
            if let Some(r) = head.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed={}", git_dir.join(r).display());
            }
        }
    }
    println!(
        "cargo:rustc-env=COLOCATE_GIT_REVISION={}",
        git_revision(&manifest)
    );
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

/// The repository's git directory (a worktree's own, where HEAD lives), if any.
fn git_dir(manifest: &Path) -> Option<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .current_dir(manifest)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
