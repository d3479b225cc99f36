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
