//! `plan --format markdown`: the plan as a pull-request comment. Names are escaped for Markdown
//! and HTML (a table named `<b>|x` shows as written and breaks no table), and SQL goes in a fence
//! longer than any run of backticks it holds.

use std::fmt::Write as _;

use colocate_core::plan::{Finding, Plan, Severity};

use super::plan::{
    blockers_of, citus_line, decision_lines, decisions_heading, fix_label, fix_lines,
    fixes_heading, summary,
};

/// Text as Markdown shows it literally, on one line (a table cell stays one cell).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A fenced block that `body` cannot close early.
fn fence(lang: &str, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let f = "`".repeat(longest.max(2) + 1);
    format!("{f}{lang}\n{}\n{f}\n", body.trim_end())
}

pub fn markdown(p: &Plan) -> String {
    let mut out = String::from("### colocate plan\n\n");
    let _ = writeln!(
        out,
        "**{}**  \n{}\n",
        text(&summary(p)),
        text(&citus_line(p))
    );
    let blocked: Vec<_> = p.tables.iter().filter(|t| t.blocked).collect();
    if !blocked.is_empty() {
        let _ = writeln!(out, "#### Blocked tables ({})\n", blocked.len());
        out.push_str("| table | would be | blockers | waits for |\n|---|---|---|---|\n");
        for t in blocked {
            let (codes, waits) = blockers_of(p, t);
            let waits = waits.map(|q| text(&q.to_string())).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                text(&t.name.to_string()),
                t.role.label(),
                text(&codes.join(", ")),
                waits
            );
        }
        out.push('\n');
    }
    if !p.decisions.is_empty() {
        let _ = writeln!(
            out,
            "#### Decisions needed\n\n{}\n",
            text(&decisions_heading(p))
        );
        for (i, d) in p.decisions.iter().enumerate() {
            let lines = decision_lines(d, i);
            let _ = writeln!(out, "- **{}**", text(&lines[0]));
            for l in &lines[1..] {
                let _ = writeln!(out, "  - {}", text(l.trim()));
            }
        }
        out.push('\n');
    }
    if !p.fixes.is_empty() {
        let _ = writeln!(out, "#### Fixes\n\n{}\n", text(&fixes_heading(p)));
        for (what, by) in fix_lines(p) {
            let _ = writeln!(out, "- {} ({})", text(&what), text(&by));
        }
        out.push('\n');
    }
    for (title, sev) in [
        ("Blockers", Severity::Blocker),
        ("Conflicts", Severity::Conflict),
        ("Warnings", Severity::Warning),
    ] {
        let fs: Vec<&Finding> = p.findings.iter().filter(|f| f.severity == sev).collect();
        if fs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "#### {title} ({})\n", fs.len());
        for f in fs {
            let _ = writeln!(out, "- **{}** {}", text(f.code.as_str()), text(&f.message));
            if let Some(fix) = &f.fix {
                let label = fix_label(f);
                let _ = write!(
                    out,
                    "  <details><summary>{label}</summary>\n\n{}\n  </details>\n",
                    fence("sql", fix)
                );
            }
        }
        out.push('\n');
    }
    if !p.unenforced.is_empty() {
        let _ = writeln!(
            out,
            "#### Foreign keys not enforced ({})\n\n| table | key | state |\n|---|---|---|",
            p.unenforced.len()
        );
        for u in &p.unenforced {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                text(&u.table.to_string()),
                text(&u.key),
                u.state.as_str()
            );
        }
        out.push('\n');
    }
    if p.steps.is_empty() {
        out.push_str("#### Steps: none\n");
    } else {
        let _ = writeln!(out, "#### Steps ({})\n", p.steps.len());
        for (i, s) in p.steps.iter().enumerate() {
            let what = s
                .table()
                .map(|t| format!(" {}", text(&t.to_string())))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}. {}{what}: {}",
                i + 1,
                s.kind().label(),
                text(&s.reason.to_string())
            );
        }
        let sql: Vec<String> = p.steps.iter().map(|s| s.sql()).collect();
        let _ = write!(
            out,
            "\n<details><summary>SQL</summary>\n\n{}\n</details>\n",
            fence("sql", &sql.join("\n"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_out_of_cells_fences_or_into_html() {
        assert_eq!(text("a|b\nc"), "a\\|b c");
        assert_eq!(text("<script>&"), "&lt;script&gt;&amp;");
        assert_eq!(text("`x`_*"), "\\`x\\`\\_\\*");
        let body = "SELECT '```';";
        let f = fence("sql", body);
        assert!(f.starts_with("````sql\n"), "{f}");
        assert!(f.ends_with("\n````\n"), "{f}");
    }
}
