//! Timestamps: the creation time stamped on things Stella makes, RFC 3339
//! formatting and parsing, and reading a count of seconds since 1970 (the
//! format of `SOURCE_DATE_EPOCH`). This module reads no environment: the
//! binary reads `SOURCE_DATE_EPOCH` and passes the time down.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a text is not a usable count of seconds since 1970.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a whole number of seconds since 1970 in range")]
pub struct EpochSecondsError(pub String);

/// Parses a whole number of seconds since 1970-01-01T00:00:00Z (surrounding
/// white space allowed), as reproducible-build timestamps are written.
pub fn parse_epoch_seconds(text: &str) -> Result<OffsetDateTime, EpochSecondsError> {
    let secs: i64 = text
        .trim()
        .parse()
        .map_err(|_| EpochSecondsError(text.to_string()))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| EpochSecondsError(text.to_string()))
}

/// The time to stamp on things Stella creates: `given` when the caller has
/// one (a reproducible-build time), else now; UTC, whole seconds.
pub fn creation_time(given: Option<OffsetDateTime>) -> OffsetDateTime {
    let t = given
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// RFC 3339 in UTC with a `Z`, whole seconds: `2024-01-02T03:04:05Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(t));
    }

    #[test]
    fn epoch_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(parse_epoch_seconds(" 1700000000\n").unwrap(), t);
        for bad in ["", "1.5", "abc", "99999999999999999999", "-99999999999999"] {
            let e = parse_epoch_seconds(bad).unwrap_err();
            assert!(e.to_string().contains("seconds since 1970"), "{e}");
        }
    }

    #[test]
    fn creation_time_uses_the_given_time_else_now() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(creation_time(Some(t)), t);
        let now = creation_time(None);
        assert_eq!(now.nanosecond(), 0);
        assert_eq!(now.offset(), time::UtcOffset::UTC);
    }
}
