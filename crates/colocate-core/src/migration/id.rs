//! Migration versions: the 14-digit `YYYYMMDDHHMMSS` prefix every migration file name starts
//! with, and the file names themselves.
//!
//! SPEC:
//! - `MigrationId`: the 14-digit timestamp prefix, validated as a real UTC date-time
//!   (month 1-12, day valid for the month incl. leap years, hour < 24, minute < 60, second < 60).
//!   Ordered, `Display` prints the 14 digits, `FromStr` parses exactly 14 digits.
//! - File names: `<14 digits>_<name>.sql` (or `.toml` for a declarative step), name non-empty
//!   of `[A-Za-z0-9_-]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A migration's version: its `YYYYMMDDHHMMSS` prefix, always a real UTC date-time.
///
/// Held as the 14-digit number, so numeric order is time order. The field is private so every
/// value has been validated; build one with [`MigrationId::parse`], [`MigrationId::from_u64`] or
/// [`MigrationId::from_unix_seconds`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MigrationId(u64);

/// Why a version is not a valid `YYYYMMDDHHMMSS` timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not 14 digits (YYYYMMDDHHMMSS)")]
    NotFourteenDigits(String),
    #[error("month {0} is not 1-12")]
    Month(u32),
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day { year: u32, month: u32, day: u32 },
    #[error("hour {0} is not 0-23")]
    Hour(u32),
    #[error("minute {0} is not 0-59")]
    Minute(u32),
    #[error("second {0} is not 0-59")]
    Second(u32),
}

const MAX_ID: u64 = 99_991_231_235_959;
/// 9999-12-31T23:59:59Z, the last second a 14-digit id can hold.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

fn is_leap_year(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Year, month, day from days since 1970-01-01 (Howard Hinnant's `civil_from_days`, for
/// non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl MigrationId {
    /// Parse exactly 14 ASCII digits that form a real date-time.
    pub fn parse(s: &str) -> Result<MigrationId, IdError> {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::NotFourteenDigits(s.to_string()));
        }
        let n = s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        MigrationId::from_u64(n)
    }

    /// The id whose 14 digits are `n` (zero-padded), if they form a real date-time.
    pub fn from_u64(n: u64) -> Result<MigrationId, IdError> {
        if n > MAX_ID {
            return Err(IdError::NotFourteenDigits(n.to_string()));
        }
        let part = |div: u64| ((n / div) % 100) as u32;
        MigrationId::from_parts(
            (n / 10_000_000_000) as u32,
            part(100_000_000),
            part(1_000_000),
            part(10_000),
            part(100),
            part(1),
        )
    }

    /// The id of a UTC date-time given by its fields.
    pub fn from_parts(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<MigrationId, IdError> {
        if year > 9999 {
            return Err(IdError::NotFourteenDigits(year.to_string()));
        }
        if !(1..=12).contains(&month) {
            return Err(IdError::Month(month));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(IdError::Day { year, month, day });
        }
        if hour > 23 {
            return Err(IdError::Hour(hour));
        }
        if minute > 59 {
            return Err(IdError::Minute(minute));
        }
        if second > 59 {
            return Err(IdError::Second(second));
        }
        Ok(MigrationId(
            u64::from(year) * 10_000_000_000
                + u64::from(month) * 100_000_000
                + u64::from(day) * 1_000_000
                + u64::from(hour) * 10_000
                + u64::from(minute) * 100
                + u64::from(second),
        ))
    }

    /// The id for a moment given as seconds since the Unix epoch, in UTC. Moments after
    /// 9999-12-31T23:59:59Z, which 14 digits cannot hold, give that last second.
    pub fn from_unix_seconds(secs: u64) -> MigrationId {
        let secs = secs.min(MAX_UNIX_SECONDS);
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        MigrationId(
            year * 10_000_000_000
                + u64::from(month) * 100_000_000
                + u64::from(day) * 1_000_000
                + (rem / 3600) * 10_000
                + (rem % 3600 / 60) * 100
                + rem % 60,
        )
    }

    /// The 14 digits as a number, e.g. `20240101000000`.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// `(year, month, day, hour, minute, second)`.
    pub fn parts(self) -> (u32, u32, u32, u32, u32, u32) {
        let n = self.0;
        let part = |div: u64| ((n / div) % 100) as u32;
        (
            (n / 10_000_000_000) as u32,
            part(100_000_000),
            part(1_000_000),
            part(10_000),
            part(100),
            part(1),
        )
    }

    /// The following second, or `None` after 9999-12-31 23:59:59.
    pub fn checked_next_second(self) -> Option<MigrationId> {
        let (mut year, mut month, mut day, mut hour, mut minute, mut second) = self.parts();
        second += 1;
        if second == 60 {
            second = 0;
            minute += 1;
        }
        if minute == 60 {
            minute = 0;
            hour += 1;
        }
        if hour == 24 {
            hour = 0;
            day += 1;
        }
        if day > days_in_month(year, month) {
            day = 1;
            month += 1;
        }
        if month == 13 {
            month = 1;
            year += 1;
        }
        MigrationId::from_parts(year, month, day, hour, minute, second).ok()
    }

    /// The following second (for `new` when the current second is taken). Saturates at
    /// 9999-12-31 23:59:59; use [`MigrationId::checked_next_second`] to tell.
    pub fn next_second(self) -> MigrationId {
        self.checked_next_second().unwrap_or(self)
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:014}", self.0)
    }
}

impl fmt::Debug for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MigrationId({self})")
    }
}

impl FromStr for MigrationId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<MigrationId, IdError> {
        MigrationId::parse(s)
    }
}

impl Serialize for MigrationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MigrationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MigrationId, D::Error> {
        let s = String::deserialize(deserializer)?;
        MigrationId::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// File names

const NAME_FORMAT: &str = "expected YYYYMMDDHHMMSS_name.sql";

/// Split `YYYYMMDDHHMMSS_name.sql` (or a declarative step's `YYYYMMDDHHMMSS_name.toml`) into its
/// version and name, or say why it is not one.
pub fn parse_file_name(file_name: &str) -> Result<(MigrationId, String), String> {
    let Some(stem) = file_name
        .strip_suffix(".sql")
        .or_else(|| file_name.strip_suffix(".toml"))
    else {
        return Err(format!(
            "{NAME_FORMAT} (or .toml for a declarative step), but it ends in neither"
        ));
    };
    let Some((version, name)) = stem.split_once('_') else {
        return Err(format!(
            "{NAME_FORMAT}, but there is no '_' after the version"
        ));
    };
    let id = MigrationId::parse(version).map_err(|e| e.to_string())?;
    if name.is_empty() {
        return Err("the name after the version is empty".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "the name '{name}' contains {bad:?}; use only letters, digits, '_' and '-'"
        ));
    }
    Ok((id, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MigrationId {
        MigrationId::parse(s).unwrap()
    }

    fn id_err(s: &str) -> String {
        MigrationId::parse(s).unwrap_err().to_string()
    }

    // --- MigrationId ---------------------------------------------------------------------

    #[test]
    fn valid_ids() {
        for s in [
            "20240101000000",
            "20240229235959",
            "20000229120000",
            "19700101000000",
            "99991231235959",
            "00010101000000",
        ] {
            assert_eq!(id(s).to_string(), s);
        }
    }

    #[test]
    fn ids_must_be_fourteen_digits() {
        for s in [
            "",
            "2024010100000",
            "202401010000000",
            "2024-01-01T000",
            "2024010100000a",
            " 20240101000000",
            "+2024010100000",
            "２０２４０１０１０００００",
        ] {
            assert_eq!(
                id_err(s),
                format!("'{s}' is not 14 digits (YYYYMMDDHHMMSS)"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn invalid_date_times() {
        assert_eq!(id_err("20241301000000"), "month 13 is not 1-12");
        assert_eq!(id_err("20240001000000"), "month 0 is not 1-12");
        assert_eq!(id_err("20230431000000"), "day 31 does not exist in 2023-04");
        assert_eq!(id_err("20240100000000"), "day 0 does not exist in 2024-01");
        assert_eq!(id_err("20230229000000"), "day 29 does not exist in 2023-02");
        assert_eq!(id_err("19000229000000"), "day 29 does not exist in 1900-02");
        assert_eq!(id_err("20240230000000"), "day 30 does not exist in 2024-02");
        assert_eq!(id_err("20240101240000"), "hour 24 is not 0-23");
        assert_eq!(id_err("20240101006000"), "minute 60 is not 0-59");
        assert_eq!(id_err("20240101000060"), "second 60 is not 0-59");
    }

    #[test]
    fn leap_years() {
        assert!(MigrationId::parse("20240229000000").is_ok());
        assert!(MigrationId::parse("20000229000000").is_ok());
        assert!(MigrationId::parse("20230229000000").is_err());
        assert!(MigrationId::parse("21000229000000").is_err());
    }

    #[test]
    fn from_str_display_and_order() {
        let a: MigrationId = "20240101000000".parse().unwrap();
        let b: MigrationId = "20240101000001".parse().unwrap();
        let c: MigrationId = "20231231235959".parse().unwrap();
        assert!(c < a && a < b);
        assert_eq!(a.as_u64(), 20_240_101_000_000);
        assert_eq!(format!("{a:?}"), "MigrationId(20240101000000)");
        assert_eq!(a.parts(), (2024, 1, 1, 0, 0, 0));
        assert!("2024".parse::<MigrationId>().is_err());
    }

    #[test]
    fn from_u64_pads_and_validates() {
        assert_eq!(
            MigrationId::from_u64(10_101_000_000).unwrap().to_string(),
            "00010101000000"
        );
        assert_eq!(
            MigrationId::from_u64(20_241_301_000_000).unwrap_err(),
            IdError::Month(13)
        );
        assert!(MigrationId::from_u64(100_000_000_000_000).is_err());
        assert!(MigrationId::from_u64(0).is_err());
    }

    #[test]
    fn serde_uses_the_fourteen_digit_string() {
        let v = id("00010101000000");
        assert_eq!(serde_json::to_string(&v).unwrap(), r#""00010101000000""#);
        assert_eq!(
            serde_json::from_str::<MigrationId>(r#""00010101000000""#).unwrap(),
            v
        );
        let err = serde_json::from_str::<MigrationId>(r#""20241301000000""#).unwrap_err();
        assert!(err.to_string().contains("month 13 is not 1-12"), "{err}");
        assert!(serde_json::from_str::<MigrationId>("20240101000000").is_err());
    }

    #[test]
    fn from_unix_seconds_known_values() {
        assert_eq!(
            MigrationId::from_unix_seconds(0).to_string(),
            "19700101000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_700_000_000).to_string(),
            "20231114221320"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(951_782_400).to_string(),
            "20000229000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_709_251_199).to_string(),
            "20240229235959"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_709_251_200).to_string(),
            "20240301000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(4_102_444_800).to_string(),
            "21000101000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(MAX_UNIX_SECONDS).to_string(),
            "99991231235959"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(u64::MAX).to_string(),
            "99991231235959"
        );
    }

    /// Every day from 1970 to 2100: from_unix_seconds agrees with counting days by hand.
    #[test]
    fn from_unix_seconds_matches_day_by_day_count() {
        let mut expected = id("19700101000000");
        for day in 0..(131 * 366) {
            let got = MigrationId::from_unix_seconds(day * 86_400 + 86_399);
            let (y, m, d, ..) = expected.parts();
            assert_eq!(got, MigrationId::from_parts(y, m, d, 23, 59, 59).unwrap());
            // Step a whole day with next_second to also exercise its day roll-over.
            expected = MigrationId::from_parts(y, m, d, 23, 59, 59)
                .unwrap()
                .next_second();
            assert!(MigrationId::parse(&expected.to_string()).is_ok());
        }
    }

    #[test]
    fn next_second_rolls_over() {
        let cases = [
            ("20240101000000", "20240101000001"),
            ("20240101000059", "20240101000100"),
            ("20240101005959", "20240101010000"),
            ("20240101235959", "20240102000000"),
            ("20240131235959", "20240201000000"),
            ("20240228235959", "20240229000000"),
            ("20240229235959", "20240301000000"),
            ("20230228235959", "20230301000000"),
            ("21000228235959", "21000301000000"),
            ("20240430235959", "20240501000000"),
            ("20231231235959", "20240101000000"),
        ];
        for (from, to) in cases {
            assert_eq!(id(from).next_second().to_string(), to, "{from}");
        }
        let last = id("99991231235959");
        assert_eq!(last.checked_next_second(), None);
        assert_eq!(last.next_second(), last);
    }

    // --- File names ----------------------------------------------------------------------

    #[test]
    fn valid_file_names() {
        assert_eq!(
            parse_file_name("20240101000000_create_users.sql").unwrap(),
            (id("20240101000000"), "create_users".to_string())
        );
        assert_eq!(
            parse_file_name("20240101000000_Add-Index_2.sql").unwrap().1,
            "Add-Index_2"
        );
        // The name may itself contain underscores; the version ends at the first one.
        assert_eq!(parse_file_name("20240101000000__x.sql").unwrap().1, "_x");
    }

    #[test]
    fn invalid_file_names() {
        let reason = |s: &str| parse_file_name(s).unwrap_err();
        assert_eq!(
            reason("README.md"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            reason("20240101000000_x.SQL"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            reason("20240101000000.sql"),
            "expected YYYYMMDDHHMMSS_name.sql, but there is no '_' after the version"
        );
        assert_eq!(reason("20241301000000_x.sql"), "month 13 is not 1-12");
        assert_eq!(
            reason("2024_01_01_x.sql"),
            "'2024' is not 14 digits (YYYYMMDDHHMMSS)"
        );
        assert_eq!(
            reason("20240101000000_.sql"),
            "the name after the version is empty"
        );
        assert_eq!(
            reason("20240101000000_add users.sql"),
            "the name 'add users' contains ' '; use only letters, digits, '_' and '-'"
        );
        assert_eq!(
            reason("20240101000000_x.sql.bak"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            parse_file_name("20240101000000_distribute_users.toml").unwrap(),
            (id("20240101000000"), "distribute_users".to_string())
        );
    }
}
