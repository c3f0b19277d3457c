//! Times cross the API as RFC 3339 strings and are stored as Unix milliseconds.

use crate::error::{ApiError, ApiResult};
use countersign_core::{Clock, Millis};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The real clock: the only place Countersign reads the time of day.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Millis {
        (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
    }
}

pub fn format(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn parse(text: &str) -> ApiResult<Millis> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| ApiError::validation(format!("'{text}' is not an RFC 3339 time such as 2026-01-31T09:00:00Z")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse(&format(1_700_000_000_123)).unwrap(), 1_700_000_000_123);
        assert!(parse("yesterday").is_err());
    }
}
