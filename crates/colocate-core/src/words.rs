//! Counts as people write them: "1 table", "3 tables", never "3 table(s)".

/// `n` and the noun, singular for one: `count(3, "table")` is `3 tables`. For a noun whose
/// plural is not `noun + s`, [`count_as`].
pub fn count(n: usize, one: &str) -> String {
    format!("{n} {}", noun(n, one))
}

/// [`count`] with the plural given: `count_as(2, "directory", "directories")`.
pub fn count_as(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The noun alone, singular for one: `noun(2, "key")` is `keys`.
pub fn noun(n: usize, one: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        format!("{one}s")
    }
}

/// The verb for `n` things: `verb(1, "is", "are")`.
pub fn verb<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "table"), "1 table");
        assert_eq!(count(0, "table"), "0 tables");
        assert_eq!(count(3, "foreign key"), "3 foreign keys");
        assert_eq!(count_as(2, "directory", "directories"), "2 directories");
        assert_eq!(noun(1, "key"), "key");
        assert_eq!(verb(2, "is", "are"), "are");
    }
}
