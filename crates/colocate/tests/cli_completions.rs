//! Shell completions and the man page come from the same command-line definition as `--help`.

mod common;

use common::{command, run};

#[test]
fn completions_cover_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let mut c = command();
        c.args(["completions", shell]);
        let r = run(c).expect(0);
        for sub in [
            "migrate",
            "rollback",
            "plan",
            "check",
            "apply",
            "undistribute",
        ] {
            assert!(r.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let mut c = command();
    c.args(["completions", "tcsh"]);
    let r = run(c).expect(2);
    assert!(r.stderr.contains("invalid value 'tcsh'"), "{}", r.stderr);
}

#[test]
fn man_page_is_roff_with_every_command() {
    let mut c = command();
    c.arg("man");
    let r = run(c).expect(0);
    assert!(
        r.stdout.contains(".TH colocate 1"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("DATABASE_URL"));
    for sub in ["migrate", "plan", "apply", "undistribute", "completions"] {
        assert!(r.stdout.contains(sub), "man page lacks {sub}");
    }
}

/// Every page colocate(1) points at exists: `man --out DIR` writes colocate.1 and one
/// colocate-COMMAND.1 per command (before, the main page named colocate-migrate(1) and others that
/// were never produced); `man COMMAND` prints one of them.
#[test]
fn man_pages_exist_for_every_command_the_main_page_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = command();
    c.arg("man").arg("--out").arg(dir.path());
    run(c).expect(0);
    let main = std::fs::read_to_string(dir.path().join("colocate.1")).unwrap();
    let named: Vec<String> = main
        .split("colocate\\-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.to_string()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    assert!(named.len() >= 12, "{named:?}");
    for name in &named {
        let page = std::fs::read_to_string(dir.path().join(format!("colocate-{name}.1")))
            .unwrap_or_else(|e| panic!("colocate-{name}.1: {e}"));
        assert!(
            page.contains(&format!(".TH colocate-{name} 1")),
            "colocate-{name}.1: {}",
            &page[..200.min(page.len())]
        );
    }
    let mut c = command();
    c.args(["man", "migrate"]);
    let r = run(c).expect(0);
    assert!(r.stdout.contains(".TH colocate-migrate 1"), "{}", r.stdout);
    let mut c = command();
    c.args(["man", "nosuch"]);
    let r = run(c).expect(2);
    assert!(
        r.only_error().contains("no command \"nosuch\""),
        "{}",
        r.stderr
    );
}

/// `--version` names the commit the binary was built from, as people paste it into issues.
#[test]
fn version_names_the_git_revision() {
    let mut c = command();
    c.arg("--version");
    let r = run(c).expect(0);
    let line = r.stdout.trim();
    let rev = line
        .strip_prefix(&format!("colocate {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(rev, head),
        None => assert_eq!(rev, "unknown"),
    }
}
