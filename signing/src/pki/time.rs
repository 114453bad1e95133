//! Unix seconds ↔ X.509 `Time` (UTCTime through 2049, GeneralizedTime after, per RFC 5280).

use std::time::Duration;

use der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::time::Time;

use super::PkiError;

pub(crate) fn to_x509(unix: u64) -> Result<Time, PkiError> {
    let d = Duration::from_secs(unix);
    match UtcTime::from_unix_duration(d) {
        Ok(t) => Ok(Time::UtcTime(t)),
        Err(_) => GeneralizedTime::from_unix_duration(d)
            .map(Time::GeneralTime)
            .map_err(|_| PkiError::Time(unix)),
    }
}

pub(crate) fn from_x509(t: Time) -> u64 {
    t.to_unix_duration().as_secs()
}

/// Unix seconds as an RFC 3339 UTC time, `2026-05-28T20:26:40Z` (`@<seconds>` past 9999,
/// which X.509 cannot write either).
pub fn rfc3339(unix: u64) -> String {
    der::DateTime::from_unix_duration(Duration::from_secs(unix))
        .map_or_else(|_| format!("@{unix}"), |t| t.to_string())
}

/// The current Unix time in seconds (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
