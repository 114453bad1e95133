//! Policy as data: the SRV catalogue, lanes (capacity, deadline, worker share) and per-User
//! rate limits, loaded from one TOML file. [`Policy::default`] is the embedded
//! `default-policy.toml`; [`Policy::load`] reads a user's file.
//!
//! Every value is checked when the file is loaded — unknown keys, out-of-range numbers, unknown
//! roles or lanes, duplicate SRVs — and refused with the line it is on, so that a bad policy
//! never reaches a running router.

mod catalogue;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcc_signing::{CommandVariant, Eui64, Srv, UserRole};
use serde::Deserialize;
use toml::Spanned;

pub use catalogue::{Catalogue, CvSet, RoleSet, ServiceRight, SrvEntry};

use crate::pipeline::lanes::Lane;
use crate::state::maintenance::{Impact, MaintenanceWindow};

/// The embedded default policy (generated once from docs/srv-catalogue.md).
pub const DEFAULT_POLICY_TOML: &str = include_str!("default-policy.toml");

/// Most requests the four lanes may hold together: half the anti-replay window (see
/// [`crate::state::replay`]).
pub const MAX_TOTAL_CAPACITY: usize = (crate::state::replay::WINDOW / 2) as usize;

/// Largest policy file accepted.
pub const MAX_POLICY_LEN: usize = 1024 * 1024;

/// How many requests a lane queues before it answers *busy*: 1..=1,048,576.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LaneCapacity(NonZeroUsize);

impl LaneCapacity {
    /// Upper bound (bounded memory: each queued request holds its envelope).
    pub const MAX: usize = 1 << 20;

    /// A capacity, if in range.
    pub fn new(n: usize) -> Option<Self> {
        NonZeroUsize::new(n)
            .filter(|n| n.get() <= Self::MAX)
            .map(Self)
    }

    /// The number.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

/// How many requests a lane may give a worker per scheduling round (highest lane with quota
/// first, see `pipeline::lanes`): 1..=1024.
/// Under saturation a lane gets `weight / sum(weights)` of the verify capacity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WorkerShare(NonZeroU32);

impl WorkerShare {
    /// Upper bound.
    pub const MAX: u32 = 1024;

    /// A share, if in range.
    pub fn new(n: u32) -> Option<Self> {
        NonZeroU32::new(n)
            .filter(|n| n.get() <= Self::MAX)
            .map(Self)
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// How long a request may wait in its lane before it is answered *busy*: 1 ms ..= 1 hour.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LaneDeadline(Duration);

impl LaneDeadline {
    /// A deadline in milliseconds, if in range.
    pub fn from_millis(ms: u64) -> Option<Self> {
        (1..=3_600_000)
            .contains(&ms)
            .then(|| Self(Duration::from_millis(ms)))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// A token bucket: `per_second` sustained, `burst` at once. Both 1..=10,000,000.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

impl RateLimit {
    /// Upper bound of either number.
    pub const MAX: u32 = 10_000_000;

    /// A limit, if both numbers are in range.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let ok = |n: u32| NonZeroU32::new(n).filter(|n| n.get() <= Self::MAX);
        Some(RateLimit {
            per_second: ok(per_second)?,
            burst: ok(burst)?,
        })
    }

    /// Sustained rate.
    pub fn per_second(self) -> u32 {
        self.per_second.get()
    }

    /// Bucket size.
    pub fn burst(self) -> u32 {
        self.burst.get()
    }
}

/// How long it takes an originator's bad-signature score to halve: 100 ms ..= 1 day.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReputationHalfLife(Duration);

impl ReputationHalfLife {
    /// A half-life in milliseconds, if in range.
    pub fn from_millis(ms: u64) -> Option<Self> {
        (100..=86_400_000)
            .contains(&ms)
            .then(|| Self(Duration::from_millis(ms)))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// A bad-signature score threshold: 1..=1,000,000 (failed verifications, decayed).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct BadSignatureScore(NonZeroU32);

impl BadSignatureScore {
    /// Upper bound.
    pub const MAX: u32 = 1_000_000;

    /// A threshold, if in range.
    pub fn new(n: u32) -> Option<Self> {
        NonZeroU32::new(n)
            .filter(|n| n.get() <= Self::MAX)
            .map(Self)
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// Signature reputation ([`crate::pipeline::reputation`]): an originator whose requests keep
/// failing signature verification is demoted to L3 at `demote_at`, refused at `refuse_at`,
/// until its score decays. `demote_at <= refuse_at`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReputationConfig {
    /// Score halves every this long.
    pub half_life: ReputationHalfLife,
    /// From this score on, the originator's requests go to L3 whatever they claim.
    pub demote_at: BadSignatureScore,
    /// From this score on, the originator's requests are refused (R9 `bad-signatures`).
    pub refuse_at: BadSignatureScore,
}

impl ReputationConfig {
    /// A configuration, if `demote_at <= refuse_at`.
    pub fn new(
        half_life: ReputationHalfLife,
        demote_at: BadSignatureScore,
        refuse_at: BadSignatureScore,
    ) -> Option<Self> {
        (demote_at <= refuse_at).then_some(ReputationConfig {
            half_life,
            demote_at,
            refuse_at,
        })
    }
}

impl Default for ReputationConfig {
    /// 30 s half-life, demoted at 8, refused at 32: a User with an occasional bad signature
    /// (one a minute) never reaches 2; a flood is demoted after 8 failures and refused after 32,
    /// and a refused originator leaks through about 0.7 requests/s (its score decaying back
    /// under 32), each of which, failing again, keeps it refused.
    fn default() -> Self {
        ReputationConfig {
            half_life: ReputationHalfLife(Duration::from_secs(30)),
            demote_at: BadSignatureScore(NonZeroU32::MIN.saturating_add(7)),
            refuse_at: BadSignatureScore(NonZeroU32::MIN.saturating_add(31)),
        }
    }
}

/// DP092 maintenance: which lanes a window of each impact holds back, and the windows the
/// policy plans (more come over the admin channel). L0 and L1 always flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaintenancePolicy {
    /// Lanes refused busy during a low-impact window (default L3).
    pub low_impact_lanes: Vec<Lane>,
    /// Lanes refused busy during a high-impact window (default L2 and L3).
    pub high_impact_lanes: Vec<Lane>,
    /// Windows planned in the policy, by start.
    pub windows: Vec<MaintenanceWindow>,
}

impl Default for MaintenancePolicy {
    fn default() -> Self {
        MaintenancePolicy {
            low_impact_lanes: vec![Lane::L3],
            high_impact_lanes: vec![Lane::L2, Lane::L3],
            windows: Vec::new(),
        }
    }
}

impl MaintenancePolicy {
    /// Whether a window of `impact` holds back `lane`.
    pub fn holds(&self, impact: Impact, lane: Lane) -> bool {
        match impact {
            Impact::High => self.high_impact_lanes.contains(&lane),
            _ => self.low_impact_lanes.contains(&lane),
        }
    }
}

/// One lane's configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LaneConfig {
    /// Queue bound.
    pub capacity: LaneCapacity,
    /// Longest wait.
    pub deadline: LaneDeadline,
    /// Deficit-round-robin quantum.
    pub weight: WorkerShare,
}

/// The router's policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The SRV catalogue.
    pub catalogue: Catalogue,
    /// L0..L3, by [`Lane::index`].
    pub lanes: [LaneConfig; 4],
    /// The default per-User limit.
    pub rate_limit: RateLimit,
    /// Per-User overrides.
    pub user_limits: HashMap<Eui64, RateLimit>,
    /// The DCC's EUI-64 (target of non-device requests).
    pub dcc_eui: Eui64,
    /// Demotion and refusal of originators whose signatures keep failing.
    pub reputation: ReputationConfig,
    /// Planned maintenance windows (DP092).
    pub maintenance: MaintenancePolicy,
}

impl Default for Policy {
    /// The embedded default policy.
    fn default() -> Self {
        #[allow(clippy::expect_used)] // A compile-time constant, checked by a unit test.
        Policy::from_toml_str(DEFAULT_POLICY_TOML).expect("embedded default policy is valid")
    }
}

/// Why a policy was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over [`MAX_POLICY_LEN`].
    #[error("policy is {0} bytes, over the maximum {MAX_POLICY_LEN}")]
    TooLarge(usize),
    /// A syntax error or an invalid value.
    #[error("policy line {line}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    /// The line, for syntax and value errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

// ---- the file's shape (serde), checked into the typed Policy below ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    dcc_eui: Option<Spanned<String>>,
    /// Replaced by `prepayment_priority`: present only to refuse it with a pointer.
    prepayment_promotes_reads: Option<Spanned<toml::Value>>,
    /// The SRVs promoted to L1 for a prepayment-mode target (staying on supply).
    #[serde(default)]
    prepayment_priority: Vec<Spanned<String>>,
    lanes: RawLanes,
    rate_limit: RawRateLimit,
    /// Optional: policies written before it get [`ReputationConfig::default`].
    reputation: Option<RawReputation>,
    /// Optional: [`MaintenancePolicy::default`].
    maintenance: Option<RawMaintenance>,
    #[serde(default)]
    srv: Vec<RawSrv>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    low_impact_lanes: Option<Vec<Spanned<String>>>,
    high_impact_lanes: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    window: Vec<RawWindow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: Spanned<i64>,
    minutes: Spanned<i64>,
    impact: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReputation {
    half_life_ms: Spanned<i64>,
    demote_at: Spanned<i64>,
    refuse_at: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct RawLanes {
    L0: RawLane,
    L1: RawLane,
    L2: RawLane,
    L3: RawLane,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLane {
    capacity: Spanned<i64>,
    deadline_ms: Spanned<i64>,
    weight: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: Spanned<i64>,
    burst: Spanned<i64>,
    #[serde(default)]
    user: Vec<RawUserLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserLimit {
    eui: Spanned<String>,
    per_second: Spanned<i64>,
    burst: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSrv {
    code: Spanned<String>,
    name: String,
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    critical: bool,
    #[serde(default)]
    non_device: bool,
    lane: Spanned<String>,
    #[serde(default)]
    safe_mode: bool,
    #[serde(default)]
    future_dated: bool,
    #[serde(default)]
    dcc_scheduled: bool,
    cvs: Option<Spanned<Vec<i64>>>,
    right: Option<Spanned<String>>,
}

/// Turns byte spans into line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn line(&self, at: usize) -> usize {
        let at = at.min(self.0.len());
        self.0.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, span: Range<usize>, reason: impl fmt::Display) -> PolicyError {
        PolicyError::Invalid {
            line: self.line(span.start),
            reason: reason.to_string(),
        }
    }

    /// Converts an integer value into a typed config value, or refuses it with its line.
    fn typed<T: TryFrom<i64>, U>(
        &self,
        v: &Spanned<i64>,
        what: &str,
        make: impl Fn(T) -> Option<U>,
    ) -> Result<U, PolicyError> {
        T::try_from(*v.get_ref())
            .ok()
            .and_then(make)
            .ok_or_else(|| self.err(v.span(), format!("{what} {} is out of range", v.get_ref())))
    }
}

/// Checks `[maintenance]`: lanes (never L0 or L1), and each window against DP092 and the
/// windows before it, refused with its line.
fn maintenance(lines: &Lines<'_>, m: &RawMaintenance) -> Result<MaintenancePolicy, PolicyError> {
    let lanes = |list: &Option<Vec<Spanned<String>>>, default: Vec<Lane>| match list {
        None => Ok(default),
        Some(list) => list
            .iter()
            .map(|l| {
                let lane: Lane = l.get_ref().parse().map_err(|e| lines.err(l.span(), e))?;
                if matches!(lane, Lane::L0 | Lane::L1) {
                    return Err(lines.err(
                        l.span(),
                        format!(
                            "{lane} always flows: a maintenance window may hold back L2 and L3 only"
                        ),
                    ));
                }
                Ok(lane)
            })
            .collect::<Result<Vec<Lane>, PolicyError>>(),
    };
    let d = MaintenancePolicy::default();
    let mut windows: Vec<MaintenanceWindow> = Vec::new();
    for w in &m.window {
        let start = lines.typed(&w.start, "maintenance window start", |s: u64| Some(s))?;
        let minutes = lines.typed(&w.minutes, "maintenance window minutes", |n: u64| {
            (1..=360).contains(&n).then_some(n)
        })?;
        let impact = match w.impact.get_ref().as_str() {
            "low" => Impact::Low,
            "high" => Impact::High,
            other => {
                return Err(lines.err(
                    w.impact.span(),
                    format!("unknown impact {other:?}: expected low or high"),
                ))
            }
        };
        let window = MaintenanceWindow {
            start,
            end: start.saturating_add(minutes * 60),
            impact,
        };
        window
            .validate(&windows)
            .map_err(|e| lines.err(w.start.span(), e))?;
        windows.push(window);
    }
    windows.sort_by_key(|w| w.start);
    Ok(MaintenancePolicy {
        low_impact_lanes: lanes(&m.low_impact_lanes, d.low_impact_lanes)?,
        high_impact_lanes: lanes(&m.high_impact_lanes, d.high_impact_lanes)?,
        windows,
    })
}

impl Policy {
    /// Parses and checks a policy.
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLarge(text.len()));
        }
        let lines = Lines(text);
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Invalid {
            line: e.span().map_or(1, |s| lines.line(s.start)),
            reason: e.message().to_owned(),
        })?;

        let lane = |l: &RawLane, name: &str| -> Result<LaneConfig, PolicyError> {
            Ok(LaneConfig {
                capacity: lines.typed(
                    &l.capacity,
                    &format!("{name} capacity"),
                    LaneCapacity::new,
                )?,
                deadline: lines.typed(
                    &l.deadline_ms,
                    &format!("{name} deadline_ms"),
                    LaneDeadline::from_millis,
                )?,
                weight: lines.typed(&l.weight, &format!("{name} weight"), WorkerShare::new)?,
            })
        };
        let lanes = [
            lane(&raw.lanes.L0, "L0")?,
            lane(&raw.lanes.L1, "L1")?,
            lane(&raw.lanes.L2, "L2")?,
            lane(&raw.lanes.L3, "L3")?,
        ];
        let total: usize = lanes.iter().map(|l| l.capacity.get()).sum();
        if total > MAX_TOTAL_CAPACITY {
            return Err(lines.err(
                raw.lanes.L0.capacity.span(),
                format!(
                    "the lanes hold {total} requests in all, over {MAX_TOTAL_CAPACITY}: half the \
                     anti-replay window, so that queued requests never fall out of it"
                ),
            ));
        }

        let limit = |ps: &Spanned<i64>, b: &Spanned<i64>| -> Result<RateLimit, PolicyError> {
            let in_range = |n: u32| (1..=RateLimit::MAX).contains(&n).then_some(n);
            let per_second = lines.typed(ps, "per_second", in_range)?;
            let burst = lines.typed(b, "burst", in_range)?;
            RateLimit::new(per_second, burst).ok_or_else(|| lines.err(ps.span(), "rate limit"))
        };
        let rate_limit = limit(&raw.rate_limit.per_second, &raw.rate_limit.burst)?;
        let mut user_limits = HashMap::new();
        for u in &raw.rate_limit.user {
            let eui: Eui64 = u
                .eui
                .get_ref()
                .parse()
                .map_err(|e| lines.err(u.eui.span(), e))?;
            let l = limit(&u.per_second, &u.burst)?;
            if user_limits.insert(eui, l).is_some() {
                return Err(lines.err(u.eui.span(), format!("duplicate rate limit for User {eui}")));
            }
        }

        let reputation = match &raw.reputation {
            None => ReputationConfig::default(),
            Some(r) => {
                let half_life = lines.typed(
                    &r.half_life_ms,
                    "reputation half_life_ms",
                    ReputationHalfLife::from_millis,
                )?;
                let demote_at =
                    lines.typed(&r.demote_at, "reputation demote_at", BadSignatureScore::new)?;
                let refuse_at =
                    lines.typed(&r.refuse_at, "reputation refuse_at", BadSignatureScore::new)?;
                ReputationConfig::new(half_life, demote_at, refuse_at).ok_or_else(|| {
                    lines.err(
                        r.refuse_at.span(),
                        format!(
                            "reputation refuse_at {} is below demote_at {}",
                            refuse_at.get(),
                            demote_at.get()
                        ),
                    )
                })?
            }
        };

        let dcc_eui = match &raw.dcc_eui {
            Some(s) => s.get_ref().parse().map_err(|e| lines.err(s.span(), e))?,
            None => Eui64::default(),
        };

        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(raw.srv.len());
        for s in raw.srv {
            let srv: Srv = s
                .code
                .get_ref()
                .parse()
                .map_err(|e| lines.err(s.code.span(), e))?;
            if !seen.insert(srv) {
                return Err(lines.err(s.code.span(), format!("duplicate SRV {srv}")));
            }
            let mut roles = RoleSet::EMPTY;
            for r in &s.roles {
                let role: UserRole = r.get_ref().parse().map_err(|e| lines.err(r.span(), e))?;
                roles = roles.with(role);
            }
            let lane: Lane = s
                .lane
                .get_ref()
                .parse()
                .map_err(|e| lines.err(s.lane.span(), e))?;
            let cvs = match &s.cvs {
                None => CvSet::default_for(s.critical, s.non_device),
                Some(list) => {
                    let mut v = Vec::new();
                    for n in list.get_ref() {
                        let cv = u8::try_from(*n)
                            .ok()
                            .and_then(CommandVariant::new)
                            .ok_or_else(|| {
                                lines.err(list.span(), format!("command variant {n} is not 1..=8"))
                            })?;
                        v.push(cv);
                    }
                    if v.is_empty() {
                        return Err(lines.err(list.span(), "cvs must not be empty"));
                    }
                    CvSet::of(&v)
                }
            };
            let right = match &s.right {
                None => ServiceRight::Core,
                Some(r) => match r.get_ref().as_str() {
                    "core" => ServiceRight::Core,
                    "elective" => ServiceRight::Elective,
                    "enrolment" => ServiceRight::Enrolment,
                    "other" => ServiceRight::Other,
                    other => {
                        return Err(lines.err(
                            r.span(),
                            format!(
                                "unknown right {other:?}: expected core, elective, enrolment \
                                 or other (SEC M8.6 (d)-(h))"
                            ),
                        ))
                    }
                },
            };
            entries.push(SrvEntry {
                srv,
                name: s.name,
                roles,
                critical: s.critical,
                non_device: s.non_device,
                lane,
                safe_mode: s.safe_mode,
                future_dated: s.future_dated,
                dcc_scheduled: s.dcc_scheduled,
                prepayment_priority: false,
                cvs,
                right,
            });
        }

        // Checked after the catalogue: every listed SRV must be one of its entries.
        if let Some(old) = &raw.prepayment_promotes_reads {
            return Err(lines.err(
                old.span(),
                "prepayment_promotes_reads was replaced by prepayment_priority: list the SRVs \
                 that keep prepayment customers on supply (see the default policy)",
            ));
        }
        let mut priority = HashSet::new();
        for code in &raw.prepayment_priority {
            let srv: Srv = code
                .get_ref()
                .parse()
                .map_err(|e| lines.err(code.span(), e))?;
            if !seen.contains(&srv) {
                return Err(lines.err(
                    code.span(),
                    format!("prepayment_priority: SRV {srv} is not in the catalogue"),
                ));
            }
            if !priority.insert(srv) {
                return Err(lines.err(
                    code.span(),
                    format!("prepayment_priority: duplicate SRV {srv}"),
                ));
            }
        }
        for e in &mut entries {
            e.prepayment_priority = priority.contains(&e.srv);
        }

        let maintenance = match &raw.maintenance {
            None => MaintenancePolicy::default(),
            Some(m) => maintenance(&lines, m)?,
        };

        Ok(Policy {
            maintenance,
            catalogue: Catalogue::new(entries),
            lanes,
            rate_limit,
            user_limits,
            dcc_eui,
            reputation,
        })
    }

    /// Reads and checks a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let io = |source| PolicyError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_POLICY_LEN as u64 {
            return Err(PolicyError::TooLarge(
                usize::try_from(len).unwrap_or(usize::MAX),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_toml_str(&text)
    }

    /// One lane's configuration.
    pub fn lane(&self, lane: Lane) -> &LaneConfig {
        &self.lanes[lane.index()]
    }

    /// The rate limit of a User.
    pub fn rate_limit_of(&self, user: Eui64) -> RateLimit {
        self.user_limits
            .get(&user)
            .copied()
            .unwrap_or(self.rate_limit)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn embedded_default_is_the_whole_catalogue() {
        let p = Policy::default();
        assert_eq!(p.catalogue.len(), 129);
        assert_eq!(p.catalogue.iter().filter(|e| e.critical).count(), 37);
        let topup = p.catalogue.get(Srv::new2(2, 2)).unwrap();
        assert_eq!(topup.lane, Lane::L1);
        assert!(topup.safe_mode && !topup.critical);
        assert!(topup.roles.contains(UserRole::ImportSupplier));
        assert!(!topup.roles.contains(UserRole::OtherUser));
        assert!(topup.cvs.contains(CommandVariant::NON_CRITICAL_WAN));
        assert!(!topup.cvs.contains(CommandVariant::CRITICAL_REQUEST));
        let arm = p.catalogue.get(Srv::new2(7, 3)).unwrap();
        assert_eq!(arm.lane, Lane::L0);
        assert!(arm.cvs.contains(CommandVariant::SIGNED_PRE_COMMAND_WAN));
        assert!(p.catalogue.get(Srv::new2(7, 16)).unwrap().roles.is_empty());
        assert!(p
            .catalogue
            .get(Srv::new2(5, 1))
            .unwrap()
            .cvs
            .contains(CommandVariant::NON_DEVICE));
        assert_eq!(p.lanes[3].weight.get(), 1);
        assert!(p.lane(Lane::L3).capacity.get() < p.lane(Lane::L0).capacity.get());
        // The file spells out the built-in reputation defaults.
        assert_eq!(p.reputation, ReputationConfig::default());
    }

    #[test]
    fn reputation_is_checked_with_its_line() {
        // The part before [reputation], without the SRV catalogue: so without the
        // prepayment_priority list either (it may only name catalogue SRVs).
        let head = DEFAULT_POLICY_TOML.split("\n[reputation]").next().unwrap();
        let (before, rest) = head.split_once("prepayment_priority = [").unwrap();
        let base = format!("{before}{}", rest.split_once("]\n").unwrap().1);
        let with = |table: &str| Policy::from_toml_str(&format!("{base}\n{table}"));
        // Absent: the defaults.
        assert_eq!(
            Policy::from_toml_str(&base).unwrap().reputation,
            ReputationConfig::default()
        );
        let ok = with("[reputation]\nhalf_life_ms = 1000\ndemote_at = 2\nrefuse_at = 2\n").unwrap();
        assert_eq!(ok.reputation.half_life.get(), Duration::from_secs(1));
        let line = base.lines().count() + 2;
        for (table, at, what) in [
            (
                "half_life_ms = 99\ndemote_at = 2\nrefuse_at = 4",
                line,
                "half_life_ms",
            ),
            (
                "half_life_ms = 1000\ndemote_at = 0\nrefuse_at = 4",
                line + 1,
                "demote_at",
            ),
            (
                "half_life_ms = 1000\ndemote_at = 2\nrefuse_at = 1000001",
                line + 2,
                "refuse_at",
            ),
            (
                "half_life_ms = 1000\ndemote_at = 8\nrefuse_at = 4",
                line + 2,
                "below",
            ),
        ] {
            let e = with(&format!("[reputation]\n{table}\n")).unwrap_err();
            assert_eq!(e.line(), Some(at), "{table}: {e}");
            assert!(e.to_string().contains(what), "{table}: {e}");
        }
    }

    #[test]
    fn prepayment_priority_is_checked_with_its_line() {
        let edit = |from: &str, to: &str| {
            assert!(DEFAULT_POLICY_TOML.contains(from), "{from}");
            let text = DEFAULT_POLICY_TOML.replacen(from, to, 1);
            let line = text[..text.find(to).unwrap()].lines().count() + 1;
            (Policy::from_toml_str(&text).unwrap_err(), line)
        };
        let (e, line) = edit("  \"4.4.5\", #", "  \"99.9\", #");
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(e.to_string().contains("not in the catalogue"), "{e}");
        let (e, line) = edit("  \"4.4.5\", #", "  \"2.2\", #");
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(e.to_string().contains("duplicate SRV 2.2"), "{e}");
        let (e, line) = edit(
            "prepayment_priority = [",
            "prepayment_promotes_reads = true\nprepayment_priority = [",
        );
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(
            e.to_string().contains("replaced by prepayment_priority"),
            "{e}"
        );
    }

    #[test]
    fn maintenance_windows_are_checked_with_their_line() {
        let with = |table: &str| {
            let text = DEFAULT_POLICY_TOML.replacen(
                "high_impact_lanes = [\"L2\", \"L3\"]\n",
                &format!("high_impact_lanes = [\"L2\", \"L3\"]\n{table}"),
                1,
            );
            let line = text[..text.find(table).unwrap()].lines().count() + 2;
            (Policy::from_toml_str(&text), line)
        };
        // 2023-11-14T22:00:00Z, two hours: fine.
        let (ok, _) =
            with("[[maintenance.window]]\nstart = 1699999200\nminutes = 120\nimpact = \"high\"\n");
        assert_eq!(ok.unwrap().maintenance.windows.len(), 1);
        // 12:00 UTC: outside 20:00-08:00, refused on the start's line naming DP092.
        let (e, line) =
            with("[[maintenance.window]]\nstart = 1699963200\nminutes = 60\nimpact = \"low\"\n");
        let e = e.unwrap_err();
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(e.to_string().contains("DP092"), "{e}");
        let lanes = DEFAULT_POLICY_TOML.replacen(
            "low_impact_lanes = [\"L3\"]",
            "low_impact_lanes = [\"L1\"]",
            1,
        );
        let e = Policy::from_toml_str(&lanes).unwrap_err();
        assert!(e.to_string().contains("always flows"), "{e}");
    }
}
