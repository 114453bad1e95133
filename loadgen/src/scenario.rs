//! Scenarios as data: a TOML file says what load to offer, to whom, and what must hold.
//!
//! A scenario has a base rate (`[load]`), a population (`[population]`: Suppliers, network
//! operators, other Users, Shared Resource Providers, devices), a list of phases (`[[phase]]`:
//! duration, rate as a multiple of the base rate, optional linear ramp, events applied at the
//! phase start), a weighted request mix (`[[mix]]`: SRV, who sends it, to which device, and any
//! deliberate defect), and expectations (`[[expect]]`, see [`crate::expect`]) checked at the end.
//!
//! Built-in scenarios live in `loadgen/scenarios/*.toml` and are embedded in the binary; each
//! file documents itself in its `description`. Every scenario file is treated as hostile input:
//! size-bounded, unknown fields refused, every number range-checked.

use std::time::Duration;

use dcc_signing::envelope::MAX_BODY_LEN;
use dcc_signing::{ExecutionKind, Srv, UserRole};
use serde::{Deserialize, Serialize};

use crate::expect::Expect;
use crate::schedule::{Schedule, ScheduleError, Segment};

/// Largest scenario file accepted.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Most distinct request tags in one scenario.
pub const MAX_TAGS: usize = 64;
/// Most phases in one scenario.
pub const MAX_PHASES: usize = 32;
/// Most devices in a population.
pub const MAX_DEVICES: u64 = 50_000_000;
/// Most Users (of all kinds) in a population.
pub const MAX_USERS: usize = 10_000;

/// The built-in scenarios: `(name, TOML)`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("steady", include_str!("../scenarios/steady.toml")),
    ("overload", include_str!("../scenarios/overload.toml")),
    ("solr", include_str!("../scenarios/solr.toml")),
    ("maintenance", include_str!("../scenarios/maintenance.toml")),
    ("attack", include_str!("../scenarios/attack.toml")),
];

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// What the scenario shows and why (shown by `--list-scenarios` and in reports).
    #[serde(default)]
    pub description: String,
    /// Seed of the request mix (the same seed gives the same sequence of requests).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Base load.
    pub load: LoadSpec,
    /// Who sends, and to which devices.
    #[serde(default)]
    pub population: PopulationSpec,
    /// Phases, in order.
    #[serde(rename = "phase")]
    pub phases: Vec<PhaseSpec>,
    /// The request mix.
    #[serde(rename = "mix")]
    pub mix: Vec<MixSpec>,
    /// What must hold at the end.
    #[serde(rename = "expect", default)]
    pub expectations: Vec<Expect>,
}

fn default_seed() -> u64 {
    0x5EED
}

/// The base rate: a number of requests per second, or `"capacity"` (the target's own estimate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RateSpec {
    /// Requests per second.
    PerSecond(f64),
    /// `"capacity"`: the target's capacity estimate.
    Named(String),
}

/// `[load]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Base rate; phase rates are multiples of it.
    pub rate: RateSpec,
    /// Sender tasks (default 4).
    #[serde(default)]
    pub senders: Option<usize>,
    /// Most requests in flight at once (default 50 000); beyond it sends are dropped and counted.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Ramp-up in seconds from zero to the first phase's rate (default none).
    #[serde(default)]
    pub ramp: Option<f64>,
    /// A request not answered after this many seconds counts as an error (default 30).
    #[serde(default)]
    pub request_timeout: Option<f64>,
    /// Signature verifier of the embedded (`inproc`) router: `known-signer` (the router's
    /// default) or `p256` (plain, ~10× slower). Scenarios about *overload* use `p256` so that
    /// twice the router's capacity stays within what one machine's generator can sign and send;
    /// what they show is lane behaviour, not absolute rates. `--verifier` overrides it.
    #[serde(default)]
    pub verifier: Option<VerifierMode>,
}

/// Which verifier an embedded router uses: the server's own type (`dcc-router serve
/// --verifier`), so that scenario files, loadgen's `--verifier` and the server's name the same
/// two verifiers the same way.
pub use dcc_router::server::config::VerifierMode;

/// `[population]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationSpec {
    /// Supplier Users (each holds IS and GS roles).
    pub suppliers: usize,
    /// Electricity Distributor Users.
    pub network_operators: usize,
    /// Other Users.
    pub other_users: usize,
    /// Shared Resource Providers.
    pub srps: usize,
    /// Devices, spread evenly over the Suppliers.
    pub devices: u64,
    /// Share of devices in prepayment mode, 0..=1.
    pub prepayment_share: f64,
    /// Whether the first Supplier is the one that fails in SoLR events (it is then not picked for
    /// `from = "supplier"`).
    pub failed_supplier: bool,
    /// Whether the last Supplier is a rogue one: registered, with a valid certificate, but its
    /// traffic is hostile (`from = "rogue_supplier"`; it is then not picked for
    /// `from = "supplier"`, so that what the router does to it shows apart from valid traffic).
    pub rogue_supplier: bool,
}

impl Default for PopulationSpec {
    fn default() -> Self {
        PopulationSpec {
            suppliers: 10,
            network_operators: 2,
            other_users: 2,
            srps: 1,
            devices: 10_000,
            prepayment_share: 0.2,
            failed_supplier: false,
            rogue_supplier: false,
        }
    }
}

/// `[[phase]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Name (unique; used by mix filters and expectations).
    pub name: String,
    /// Length in seconds.
    pub duration: f64,
    /// Rate at the start, as a multiple of the base rate (default 1).
    #[serde(default = "one")]
    pub rate: f64,
    /// Rate at the end, as a multiple of the base rate (default: same as `rate`).
    #[serde(default)]
    pub to_rate: Option<f64>,
    /// Events applied to the target when the phase starts.
    #[serde(default)]
    pub events: Vec<EventSpec>,
}

fn one() -> f64 {
    1.0
}

/// A change applied to the target mid-run.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EventSpec {
    /// The failed Supplier's certificates go into revocation-delayed state, MP134A as written:
    /// the SMKI PMA's delay (the policy's safe-mode set), then the Authority's direction of the
    /// population's SRPs, which send safe-mode SRVs originated as the failed Supplier, signed
    /// with its key, over their own connections; the Supplier's own traffic is refused.
    DelayRevocation,
    /// The failed Supplier's certificates are revoked outright.
    Revoke,
    /// The delay ends: the certificates are revoked.
    EndDelay,
    /// DP092: a planned maintenance window of this impact starts now, by the target's clock
    /// (planned over the admin channel, one hour long, until `maintenance_end`). Windows may
    /// only lie between 20:00 and 08:00 UTC, so the target must run on a clock inside those
    /// hours: `dcc-router serve --simulated-clock-start …T20:00:00Z` (tests and demonstrations
    /// only); the in-process target does so by itself when a scenario plans a window.
    MaintenanceStart {
        /// `low` (default lanes held back: L3) or `high` (L2 and L3).
        impact: dcc_router::state::maintenance::Impact,
    },
    /// The window `maintenance_start` planned is removed: every lane flows again.
    MaintenanceEnd,
}

/// Who sends a request (and whose connection carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Party {
    /// A healthy Supplier (IS/GS).
    Supplier,
    /// The Supplier that fails in SoLR scenarios.
    FailedSupplier,
    /// A registered Supplier whose traffic is hostile (a compromised or broken User system).
    RogueSupplier,
    /// An Electricity Distributor.
    NetworkOperator,
    /// An Other User.
    OtherUser,
    /// A Shared Resource Provider.
    Srp,
}

/// Which device a request targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceSel {
    /// A device of the signing Supplier in prepayment mode.
    OwnPrepayment,
    /// A device of the signing Supplier in credit mode.
    OwnCredit,
    /// Any device of the signing Supplier.
    Own,
    /// Any device at all.
    Any,
    /// A device registered to another Supplier.
    Foreign,
    /// The DCC itself (non-device requests).
    Dcc,
}

/// A deliberate defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Attack {
    /// One bit of the signature flipped.
    BadSignature,
    /// An exact copy of an earlier accepted request.
    Replay,
    /// Signed with a key whose certificate the target never saw, claiming a real User's EUI.
    UnknownCert,
    /// Not signed at all: 64 bytes that are not a signature by the certificate's key (what a
    /// sender without the key floods with; it costs the generator no ECDSA, the target one
    /// verification each unless it stops verifying them).
    ForgedSignature,
}

/// `[[mix]]`: one kind of request and its weight.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    /// Label used in reports and expectations (several entries may share one).
    pub tag: String,
    /// Relative weight among the entries active in a phase.
    pub weight: f64,
    /// Service Reference Variant, e.g. `"2.2"`.
    pub srv: String,
    /// Whose connection sends it.
    pub from: Party,
    /// Who signs it and is its originator (default: `from`).
    #[serde(default)]
    pub sign_as: Option<Party>,
    /// Target device.
    pub device: DeviceSel,
    /// User Role claimed (default: IS for Suppliers, ED, OU).
    #[serde(default)]
    pub role: Option<UserRole>,
    /// Command variant (default 1, or 8 for `device = "dcc"`).
    #[serde(default)]
    pub cv: Option<u8>,
    /// Execution kind (default on-demand).
    #[serde(default)]
    pub execution: Option<ExecutionKind>,
    /// Deliberate defect.
    #[serde(default)]
    pub attack: Option<Attack>,
    /// Phases in which the entry is active (default: all).
    #[serde(default)]
    pub phases: Vec<String>,
    /// Body length in bytes (default 48, like a small GBCS payload).
    #[serde(default)]
    pub body_len: Option<usize>,
}

/// Why a scenario is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Neither a built-in name nor a readable file.
    #[error("no built-in scenario {name:?} (built-ins: {builtins}) and no readable file: {io}")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The built-in names.
        builtins: String,
        /// The I/O error reading it as a path.
        io: String,
    },
    /// Over [`MAX_SCENARIO_BYTES`].
    #[error("scenario file is {0} bytes, over the limit of {MAX_SCENARIO_BYTES}")]
    TooLarge(usize),
    /// Not valid TOML for a scenario.
    #[error("scenario is not valid: {0}")]
    Parse(String),
    /// Valid TOML, invalid meaning.
    #[error("scenario {scenario:?}: {msg}")]
    Invalid {
        /// Scenario name.
        scenario: String,
        /// What is wrong.
        msg: String,
    },
    /// The resulting schedule is unusable.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        if text.len() > MAX_SCENARIO_BYTES {
            return Err(ScenarioError::TooLarge(text.len()));
        }
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// A built-in scenario by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::from_toml(text);
        }
        let path = std::path::Path::new(name_or_path);
        let meta = std::fs::metadata(path).map_err(|e| ScenarioError::NotFound {
            name: name_or_path.chars().take(200).collect(),
            builtins: BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            io: e.to_string(),
        })?;
        if meta.len() > MAX_SCENARIO_BYTES as u64 {
            return Err(ScenarioError::TooLarge(meta.len() as usize));
        }
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::NotFound {
            name: name_or_path.chars().take(200).collect(),
            builtins: String::new(),
            io: e.to_string(),
        })?;
        Scenario::from_toml(&text)
    }

    fn invalid(&self, msg: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            scenario: self.name.chars().take(100).collect(),
            msg: msg.into(),
        }
    }

    /// Checks every range and cross-reference.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let finite_pos = |v: f64| v.is_finite() && v >= 0.0;
        if self.name.is_empty() || self.name.len() > 100 {
            return Err(self.invalid("name must be 1..=100 characters"));
        }
        match &self.load.rate {
            RateSpec::PerSecond(r) if !(r.is_finite() && *r > 0.0 && *r <= 10_000_000.0) => {
                return Err(self.invalid("load.rate must be in (0, 10 000 000] requests/s"))
            }
            RateSpec::Named(n) if n != "capacity" => {
                return Err(self.invalid(format!(
                    "load.rate {n:?}: expected a number or \"capacity\""
                )))
            }
            _ => {}
        }
        if let Some(s) = self.load.senders {
            if s == 0 || s > 1024 {
                return Err(self.invalid("load.senders must be 1..=1024"));
            }
        }
        if let Some(m) = self.load.max_in_flight {
            if m == 0 || m > 10_000_000 {
                return Err(self.invalid("load.max_in_flight must be 1..=10 000 000"));
            }
        }
        for (what, v) in [
            ("load.ramp", self.load.ramp),
            ("load.request_timeout", self.load.request_timeout),
        ] {
            if let Some(v) = v {
                if !finite_pos(v) || v > 86_400.0 {
                    return Err(self.invalid(format!("{what} must be 0..=86400 seconds")));
                }
            }
        }
        let p = &self.population;
        if p.suppliers == 0 {
            return Err(self.invalid("population.suppliers must be at least 1"));
        }
        if p.failed_supplier && p.suppliers < 2 {
            return Err(
                self.invalid("population.failed_supplier needs at least 2 suppliers (one healthy)")
            );
        }
        let special = usize::from(p.failed_supplier) + usize::from(p.rogue_supplier);
        if p.rogue_supplier && p.suppliers < special + 1 {
            return Err(self.invalid(
                "population.rogue_supplier needs one more supplier than the failed and rogue ones \
                 (one healthy)",
            ));
        }
        if p.suppliers + p.network_operators + p.other_users + p.srps > MAX_USERS {
            return Err(self.invalid(format!("population: at most {MAX_USERS} Users")));
        }
        if p.devices < p.suppliers as u64 || p.devices > MAX_DEVICES {
            return Err(self.invalid(format!(
                "population.devices must be between the number of suppliers and {MAX_DEVICES}"
            )));
        }
        if !(0.0..=1.0).contains(&p.prepayment_share) {
            return Err(self.invalid("population.prepayment_share must be in 0..=1"));
        }
        if self.phases.is_empty() || self.phases.len() > MAX_PHASES {
            return Err(self.invalid(format!("1..={MAX_PHASES} phases are needed")));
        }
        let mut names = std::collections::BTreeSet::new();
        for ph in &self.phases {
            if ph.name.is_empty() || ph.name.len() > 64 || ph.name == "ramp" {
                return Err(self.invalid(format!(
                    "phase name {:?}: 1..=64 characters, and not \"ramp\" (reserved)",
                    ph.name
                )));
            }
            if !names.insert(ph.name.as_str()) {
                return Err(self.invalid(format!("phase {:?} appears twice", ph.name)));
            }
            let to = ph.to_rate.unwrap_or(ph.rate);
            let duration_ok =
                finite_pos(ph.duration) && ph.duration > 0.0 && ph.duration <= 86_400.0;
            let rates_ok =
                finite_pos(ph.rate) && finite_pos(to) && ph.rate <= 1000.0 && to <= 1000.0;
            if !(duration_ok && rates_ok) {
                return Err(self.invalid(format!(
                    "phase {:?}: duration in (0, 86400] s, rates in 0..=1000 × base",
                    ph.name
                )));
            }
        }
        if self.mix.is_empty() {
            return Err(self.invalid("the mix is empty"));
        }
        let mut tags = std::collections::BTreeSet::new();
        for m in &self.mix {
            tags.insert(m.tag.as_str());
            if m.tag.is_empty() || m.tag.len() > 64 {
                return Err(self.invalid("mix tags are 1..=64 characters"));
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return Err(self.invalid(format!("mix {:?}: weight must be > 0", m.tag)));
            }
            m.srv
                .parse::<Srv>()
                .map_err(|e| self.invalid(format!("mix {:?}: {e}", m.tag)))?;
            if let Some(cv) = m.cv {
                if !(1..=8).contains(&cv) {
                    return Err(self.invalid(format!("mix {:?}: cv must be 1..=8", m.tag)));
                }
            }
            if m.body_len.is_some_and(|b| b > MAX_BODY_LEN) {
                return Err(
                    self.invalid(format!("mix {:?}: body_len at most {MAX_BODY_LEN}", m.tag))
                );
            }
            for ph in &m.phases {
                if !names.contains(ph.as_str()) {
                    return Err(self.invalid(format!("mix {:?} names unknown phase {ph:?}", m.tag)));
                }
            }
            let needs = |party: Party| match party {
                Party::Supplier | Party::FailedSupplier | Party::RogueSupplier => 1,
                Party::NetworkOperator => p.network_operators,
                Party::OtherUser => p.other_users,
                Party::Srp => p.srps,
            };
            for party in [Some(m.from), m.sign_as].into_iter().flatten() {
                if needs(party) == 0 {
                    return Err(
                        self.invalid(format!("mix {:?}: population has no {party:?}", m.tag))
                    );
                }
                if party == Party::FailedSupplier && !p.failed_supplier {
                    return Err(self.invalid(format!(
                        "mix {:?}: uses failed_supplier but population.failed_supplier is false",
                        m.tag
                    )));
                }
                if party == Party::RogueSupplier && !p.rogue_supplier {
                    return Err(self.invalid(format!(
                        "mix {:?}: uses rogue_supplier but population.rogue_supplier is false",
                        m.tag
                    )));
                }
            }
            if m.device == DeviceSel::Foreign && p.suppliers < 2 {
                return Err(self.invalid("device = \"foreign\" needs at least 2 suppliers"));
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(self.invalid(format!("at most {MAX_TAGS} distinct tags")));
        }
        for ph in &self.phases {
            let active = self
                .mix
                .iter()
                .any(|m| m.phases.is_empty() || m.phases.contains(&ph.name));
            if !active && (ph.rate > 0.0 || ph.to_rate.unwrap_or(0.0) > 0.0) {
                return Err(self.invalid(format!(
                    "phase {:?} sends requests but no mix entry is active in it",
                    ph.name
                )));
            }
        }
        for e in &self.expectations {
            e.validate(&names, &tags)
                .map_err(|msg| self.invalid(format!("expectation: {msg}")))?;
        }
        Ok(())
    }

    /// Whether a phase plans a DP092 maintenance window (the target's clock must then be
    /// inside 20:00–08:00 UTC).
    pub fn plans_maintenance(&self) -> bool {
        self.phases.iter().any(|p| {
            p.events
                .iter()
                .any(|e| matches!(e, EventSpec::MaintenanceStart { .. }))
        })
    }

    /// Distinct tags, in order of first appearance.
    pub fn tags(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.mix {
            if !out.contains(&m.tag) {
                out.push(m.tag.clone());
            }
        }
        out
    }

    /// Sum of the phase durations (without ramp).
    pub fn duration(&self) -> f64 {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Command-line overrides of a scenario's load.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Base rate, requests/s.
    pub rate: Option<f64>,
    /// Total duration of the phases (scaled proportionally), ramp excluded.
    pub duration: Option<Duration>,
    /// Ramp-up length.
    pub ramp: Option<Duration>,
    /// Sender tasks.
    pub senders: Option<usize>,
}

/// A scenario resolved against overrides and the target: phases with absolute times and rates.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario as given.
    pub scenario: Scenario,
    /// Base rate used, requests/s.
    pub base_rate: f64,
    /// Where the base rate came from (`scenario`, `--rate`, `capacity of …`).
    pub rate_source: String,
    /// Phase names in schedule order (a `ramp` phase first when there is a ramp).
    pub phase_names: Vec<String>,
    /// For each phase, the scenario phase whose mix and events it uses.
    pub mix_phase: Vec<usize>,
    /// Events: `(time, scenario phase index, event)`.
    pub events: Vec<(Duration, usize, EventSpec)>,
    /// The schedule.
    pub schedule: Schedule,
    /// Tags in index order.
    pub tags: Vec<String>,
    /// Sender tasks.
    pub senders: usize,
    /// Most requests in flight.
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Warnings about misleading parameters (printed and kept in the report).
    pub warnings: Vec<String>,
}

/// Shortest run that is not flagged as too short to warm up.
pub const MIN_USEFUL_DURATION: Duration = Duration::from_secs(3);

impl Plan {
    /// Resolves `scenario` with `ov`; `capacity` is the target's estimate (for `"capacity"`).
    pub fn build(
        scenario: Scenario,
        ov: &Overrides,
        capacity: Option<f64>,
    ) -> Result<Plan, ScenarioError> {
        let mut warnings = Vec::new();
        let (base_rate, rate_source) = match (ov.rate, &scenario.load.rate) {
            (Some(r), _) => (r, "--rate".to_owned()),
            (None, RateSpec::PerSecond(r)) => (*r, "scenario".to_owned()),
            (None, RateSpec::Named(_)) => match capacity {
                Some(c) => (c, "the target's capacity estimate".to_owned()),
                // No silent fixed figure: the caller finds the capacity (calibration ramp,
                // `crate::calibrate`) or the user passes --rate.
                None => {
                    return Err(scenario.invalid(
                        "the scenario's rate is \"capacity\" but no capacity is known: pass \
                         --rate, or let loadgen find it with its calibration ramp",
                    ))
                }
            },
        };
        if !(base_rate.is_finite() && base_rate > 0.0 && base_rate <= 10_000_000.0) {
            return Err(scenario.invalid("the rate must be in (0, 10 000 000] requests/s"));
        }
        let senders = ov.senders.or(scenario.load.senders).unwrap_or(4);
        if senders == 0 || senders > 1024 {
            return Err(scenario.invalid("senders must be 1..=1024"));
        }
        // Each sender handles every `senders`-th request: below one request per second per
        // sender the per-sender schedule is so sparse that warm-up and lag figures mislead.
        if base_rate < senders as f64 {
            return Err(scenario.invalid(format!(
                "rate {base_rate}/s is below the number of senders ({senders}): each sender \
                 would send less than one request per second; lower --senders or raise --rate"
            )));
        }
        let total = scenario.duration();
        let scale = match ov.duration {
            Some(d) if d.is_zero() => return Err(scenario.invalid("--duration must be > 0")),
            Some(d) => d.as_secs_f64() / total,
            None => 1.0,
        };
        let ramp = ov
            .ramp
            .map(|d| d.as_secs_f64())
            .or(scenario.load.ramp)
            .unwrap_or(0.0);
        let mut segments = Vec::new();
        let mut phase_names = Vec::new();
        let mut mix_phase = Vec::new();
        let mut events = Vec::new();
        if ramp > 0.0 {
            let first = &scenario.phases[0];
            segments.push(Segment {
                duration: ramp,
                from_rate: 0.0,
                to_rate: first.rate * base_rate,
                phase: 0,
            });
            phase_names.push("ramp".to_owned());
            mix_phase.push(0);
        }
        let mut t = ramp;
        for (k, ph) in scenario.phases.iter().enumerate() {
            let d = ph.duration * scale;
            let idx = phase_names.len();
            segments.push(Segment {
                duration: d,
                from_rate: ph.rate * base_rate,
                to_rate: ph.to_rate.unwrap_or(ph.rate) * base_rate,
                phase: idx,
            });
            phase_names.push(ph.name.clone());
            mix_phase.push(k);
            for e in &ph.events {
                events.push((Duration::from_secs_f64(t), k, e.clone()));
            }
            t += d;
        }
        let schedule = Schedule::new(segments)?;
        let run = schedule.duration();
        if run < MIN_USEFUL_DURATION {
            warnings.push(format!(
                "the run lasts {:.1} s, under {} s: too short to warm up, figures are dominated \
                 by start-up effects",
                run.as_secs_f64(),
                MIN_USEFUL_DURATION.as_secs()
            ));
        }
        if ramp > 0.0 && ramp > 0.5 * run.as_secs_f64() {
            warnings.push("the ramp takes more than half the run".to_owned());
        }
        let timeout = scenario.load.request_timeout.unwrap_or(30.0);
        Ok(Plan {
            tags: scenario.tags(),
            max_in_flight: scenario.load.max_in_flight.unwrap_or(50_000),
            request_timeout: Duration::from_secs_f64(timeout.max(0.001)),
            base_rate,
            rate_source,
            phase_names,
            mix_phase,
            events,
            schedule,
            senders,
            warnings,
            scenario,
        })
    }

    /// Index of a phase by name in [`Plan::phase_names`].
    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phase_names.iter().position(|n| n == name)
    }

    /// Index of a tag by name.
    pub fn tag_index(&self, name: &str) -> Option<usize> {
        self.tags.iter().position(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn builtins_parse_and_validate() {
        for (name, _) in BUILTIN {
            let s = Scenario::load(name).unwrap();
            assert_eq!(&s.name, name);
            assert!(!s.description.is_empty(), "{name} is undocumented");
            let plan = Plan::build(s, &Overrides::default(), Some(5000.0)).unwrap();
            assert!(!plan.schedule.is_empty());
        }
    }

    fn minimal() -> String {
        r#"
name = "t"
[load]
rate = 100
[[phase]]
name = "a"
duration = 1.0
[[mix]]
tag = "x"
weight = 1
srv = "2.2"
from = "supplier"
device = "own"
"#
        .to_owned()
    }

    #[test]
    fn hostile_scenarios_are_refused_with_reasons() {
        assert!(Scenario::from_toml(&minimal()).is_ok());
        let cases = [
            ("rate = 100", "rate = -1"),
            ("rate = 100", "rate = \"lots\""),
            ("duration = 1.0", "duration = 0.0"),
            ("weight = 1", "weight = 0"),
            ("srv = \"2.2\"", "srv = \"2.0\""),
            ("from = \"supplier\"", "from = \"nobody\""),
            ("device = \"own\"", "device = \"own\"\nbogus = 1"),
            ("device = \"own\"", "device = \"own\"\nphases = [\"nope\"]"),
            ("device = \"own\"", "device = \"own\"\nbody_len = 100000"),
        ];
        for (from, to) in cases {
            let text = minimal().replace(from, to);
            assert!(Scenario::from_toml(&text).is_err(), "accepted: {to}");
        }
        let big = "#".repeat(MAX_SCENARIO_BYTES + 1);
        assert!(matches!(
            Scenario::from_toml(&big),
            Err(ScenarioError::TooLarge(_))
        ));
        assert!(matches!(
            Scenario::load("no-such-scenario-or-file"),
            Err(ScenarioError::NotFound { .. })
        ));
    }

    #[test]
    fn overrides_and_misleading_parameters() {
        let s = Scenario::from_toml(&minimal()).unwrap();
        let ov = Overrides {
            rate: Some(2.0),
            senders: Some(4),
            ..Default::default()
        };
        let err = Plan::build(s.clone(), &ov, None).unwrap_err().to_string();
        assert!(err.contains("below the number of senders"), "{err}");
        let ov = Overrides {
            rate: Some(200.0),
            duration: Some(Duration::from_secs(2)),
            ramp: Some(Duration::from_millis(500)),
            senders: Some(2),
        };
        let plan = Plan::build(s, &ov, None).unwrap();
        assert_eq!(plan.phase_names, vec!["ramp", "a"]);
        assert_eq!(plan.schedule.len(), 50 + 400);
        assert!(plan.warnings.iter().any(|w| w.contains("too short")));
    }
}
