//! Building blocks of the PL/pgSQL that generated migrations carry, shared by the files'
//! own statements (`generate`) and the journal's blocks ([`crate::journal::plpgsql`]).

use crate::schema::QualifiedName;

/// The condition that the citus extension is created in this database.
pub(crate) const CITUS_INSTALLED: &str =
    "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')";

/// `DO $tag$ ... $tag$` with a tag that does not occur in the body.
pub(crate) fn do_block(body: &str) -> String {
    format!("DO {}", dollar_quoted("colocate", &format!("\n{body}\n")))
}

/// `text` as a dollar-quoted string constant, `$tag$text$tag$`, with a tag made from `base`
/// that does not occur in the text.
pub(crate) fn dollar_quoted(base: &str, text: &str) -> String {
    let mut tag = base.to_string();
    let mut n = 0;
    // (with a `$` after the text: a text ending in `$tag` would close the quote early)
    while format!("{text}$").contains(&format!("${tag}$")) {
        n += 1;
        tag = format!("{base}{n}");
    }
    format!("${tag}${text}${tag}$")
}

/// `t` as a `regclass` value.
pub(crate) fn regclass(t: &QualifiedName) -> String {
    format!("{}::regclass", t.regclass_literal())
}

/// Whether `t` is in Citus metadata (only evaluated where Citus is installed).
pub(crate) fn in_citus(t: &QualifiedName) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = {})",
        regclass(t)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_never_occurs_in_the_body() {
        assert_eq!(do_block("x"), "DO $colocate$\nx\n$colocate$");
        assert_eq!(
            do_block("$colocate$ $colocate1$"),
            "DO $colocate2$\n$colocate$ $colocate1$\n$colocate2$"
        );
        assert_eq!(dollar_quoted("q", "it's"), "$q$it's$q$");
        assert_eq!(dollar_quoted("q", "$q$"), "$q1$$q$$q1$");
        assert_eq!(dollar_quoted("q", "x$q"), "$q1$x$q$q1$");
    }
}
