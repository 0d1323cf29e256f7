//! Creation timestamps that honour `SOURCE_DATE_EPOCH` (reproducible builds).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why `SOURCE_DATE_EPOCH` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH={0:?} is not a whole number of seconds since 1970 in range")]
pub struct SourceDateEpochError(pub String);

/// The time to stamp on things Stella creates: `SOURCE_DATE_EPOCH` when set,
/// else now (UTC, whole seconds).
pub fn creation_time() -> Result<OffsetDateTime, SourceDateEpochError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            let secs: i64 = v
                .trim()
                .parse()
                .map_err(|_| SourceDateEpochError(v.clone()))?;
            OffsetDateTime::from_unix_timestamp(secs).map_err(|_| SourceDateEpochError(v))
        }
        _ => {
            let now = OffsetDateTime::now_utc();
            Ok(now.replace_nanosecond(0).unwrap_or(now))
        }
    }
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
}
