//! Planned maintenance windows (DP092; tabasc-dp091-dp095.txt, SEC H8.3: planned maintenance
//! runs between 20:00 and 08:00, at most six hours a window; at most one high-impact and three
//! low-impact windows a month). During a window the lanes the policy names for its impact are
//! refused *busy* (R10, detail `maintenance-window`: send again after the window); L0 and L1
//! always flow.
//!
//! Times are Unix seconds and the 20:00–08:00 rule is read in UTC (the router's clock): in
//! winter that is UK time; in summer (BST) a window the rule allows starts an hour later in
//! UK time than it could.

use std::sync::{PoisonError, RwLock};

/// How disruptive a window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Impact {
    /// Up to three a month.
    Low,
    /// At most one a month.
    High,
}

/// One window: `[start, end)`, Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MaintenanceWindow {
    /// First second.
    pub start: u64,
    /// First second after it.
    pub end: u64,
    /// Its impact.
    pub impact: Impact,
}

/// Which DP092 rule a window breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// Not between 20:00 and 08:00.
    #[error("DP092 (SEC H8.3): a maintenance window must lie between 20:00 and 08:00 UTC; {start}..{end} does not")]
    OutsideNight {
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
    /// Longer than six hours, or empty.
    #[error("DP092 (SEC H8.3): a maintenance window lasts more than 0 and at most 6 hours; {start}..{end} lasts {secs} s")]
    Length {
        /// Start.
        start: u64,
        /// End.
        end: u64,
        /// Its length.
        secs: u64,
    },
    /// A second high-impact window in a month.
    #[error("DP092: at most one high-impact maintenance window a month; {year}-{month:02} has one already")]
    TooManyHigh {
        /// Year.
        year: i64,
        /// Month.
        month: u32,
    },
    /// A fourth low-impact window in a month.
    #[error("DP092: at most three low-impact maintenance windows a month; {year}-{month:02} has three already")]
    TooManyLow {
        /// Year.
        year: i64,
        /// Month.
        month: u32,
    },
    /// Overlaps another window.
    #[error("maintenance window {start}..{end} overlaps another")]
    Overlap {
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
}

impl WindowError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WindowError::OutsideNight { .. } => "dp092-night",
            WindowError::Length { .. } => "dp092-length",
            WindowError::TooManyHigh { .. } => "dp092-high-per-month",
            WindowError::TooManyLow { .. } => "dp092-low-per-month",
            WindowError::Overlap { .. } => "window-overlap",
        }
    }
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// (year, month) of a Unix time, UTC (civil-from-days, proleptic Gregorian).
pub fn year_month(t: u64) -> (i64, u32) {
    let z = i64::try_from(t / DAY).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

impl MaintenanceWindow {
    /// Whether `now` is inside it.
    pub fn covers(&self, now: u64) -> bool {
        self.start <= now && now < self.end
    }

    /// Checks the window on its own and against the windows already planned.
    pub fn validate(&self, planned: &[MaintenanceWindow]) -> Result<(), WindowError> {
        let secs = self.end.saturating_sub(self.start);
        if secs == 0 || secs > 6 * HOUR {
            return Err(WindowError::Length {
                start: self.start,
                end: self.end,
                secs,
            });
        }
        // The night the start falls in: from 20:00 to the next 08:00.
        let tod = self.start % DAY;
        let night = if tod >= 20 * HOUR {
            self.start - tod + 20 * HOUR
        } else if tod < 8 * HOUR {
            (self.start - tod).saturating_sub(4 * HOUR)
        } else {
            return Err(WindowError::OutsideNight {
                start: self.start,
                end: self.end,
            });
        };
        if self.end > night + 12 * HOUR {
            return Err(WindowError::OutsideNight {
                start: self.start,
                end: self.end,
            });
        }
        if planned
            .iter()
            .any(|w| w.start < self.end && self.start < w.end)
        {
            return Err(WindowError::Overlap {
                start: self.start,
                end: self.end,
            });
        }
        let (year, month) = year_month(self.start);
        let same = planned
            .iter()
            .filter(|w| w.impact == self.impact && year_month(w.start) == (year, month))
            .count();
        match self.impact {
            Impact::High if same >= 1 => Err(WindowError::TooManyHigh { year, month }),
            Impact::Low if same >= 3 => Err(WindowError::TooManyLow { year, month }),
            _ => Ok(()),
        }
    }
}

/// The windows in force: the policy's (set when the router is built) and those planned over
/// the admin channel (durable: the store's `maintenance-windows` metadata).
#[derive(Debug, Default)]
pub struct Maintenance {
    policy: RwLock<Vec<MaintenanceWindow>>,
    admin: RwLock<Vec<MaintenanceWindow>>,
}

impl Maintenance {
    /// Every window, policy's and admin's.
    pub fn all(&self) -> Vec<MaintenanceWindow> {
        let mut v = self.admin_windows();
        v.extend(
            self.policy
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter(),
        );
        v.sort_by_key(|w| w.start);
        v
    }

    /// The windows planned over the admin channel, by start.
    pub fn admin_windows(&self) -> Vec<MaintenanceWindow> {
        self.admin
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The impact of the windows covering `now`, if any (high if any is).
    pub fn active(&self, now: u64) -> Option<Impact> {
        let scan = |l: &RwLock<Vec<MaintenanceWindow>>| {
            l.read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|w| w.covers(now))
                .map(|w| w.impact)
                .max_by_key(|i| matches!(i, Impact::High))
        };
        match (scan(&self.policy), scan(&self.admin)) {
            (Some(Impact::High), _) | (_, Some(Impact::High)) => Some(Impact::High),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn set_planned_by_policy(&self, windows: Vec<MaintenanceWindow>) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = windows;
    }

    pub(crate) fn set_admin_windows(&self, mut windows: Vec<MaintenanceWindow>) {
        windows.sort_by_key(|w| w.start);
        *self.admin.write().unwrap_or_else(PoisonError::into_inner) = windows;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_civil() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(1_700_000_000), (2023, 11));
        assert_eq!(year_month(1_709_251_200), (2024, 3)); // 2024-03-01T00:00Z
        assert_eq!(year_month(1_709_251_199), (2024, 2));
    }
}
