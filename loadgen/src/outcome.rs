//! What a target answered: the outcome class, the response code and the lane.
//!
//! The recorder keys every latency by *lane × outcome class*, so these two enums are small and
//! dense (`index()` is used to address arrays) rather than open-ended.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A router priority lane, or [`Lane::None`] when the target did not classify the request
/// (refused before classification, or a transport error).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Lane {
    /// Supply continuity (arm/enable supply, emergency credit, SRP safe mode).
    L0,
    /// Prepayment.
    L1,
    /// Other on-demand commands.
    L2,
    /// Reads, non-device, scheduled and future-dated requests.
    L3,
    /// Not classified.
    #[serde(rename = "none")]
    None,
}

impl Lane {
    /// Number of lanes, [`Lane::None`] included.
    pub const COUNT: usize = 5;
    /// All lanes in index order.
    pub const ALL: [Lane; Lane::COUNT] = [Lane::L0, Lane::L1, Lane::L2, Lane::L3, Lane::None];

    /// Dense index, `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            Lane::L0 => 0,
            Lane::L1 => 1,
            Lane::L2 => 2,
            Lane::L3 => 3,
            Lane::None => 4,
        }
    }

    /// Short name used in reports, file names and interval-log tags.
    pub const fn name(self) -> &'static str {
        match self {
            Lane::L0 => "L0",
            Lane::L1 => "L1",
            Lane::L2 => "L2",
            Lane::L3 => "L3",
            Lane::None => "none",
        }
    }

    /// Parses `L0`..`L3` (case-insensitive) or `none`.
    pub fn parse(s: &str) -> Option<Lane> {
        Lane::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// The router's lane as the report counts it: `None` (refused before classification) is a
/// column of its own.
impl From<Option<dcc_router::Lane>> for Lane {
    fn from(l: Option<dcc_router::Lane>) -> Lane {
        match l {
            Some(dcc_router::Lane::L0) => Lane::L0,
            Some(dcc_router::Lane::L1) => Lane::L1,
            Some(dcc_router::Lane::L2) => Lane::L2,
            Some(dcc_router::Lane::L3) => Lane::L3,
            None => Lane::None,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The class of a target's answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeClass {
    /// Accepted (I0 / I99).
    Ok,
    /// Refused with a response code (access control, bad signature, replay, revoked…).
    Refused,
    /// Shed: the lane was full.
    Busy,
    /// Refused by a per-User rate limit.
    Throttled,
    /// Transport or target failure, or no answer before the drain deadline.
    Error,
}

impl OutcomeClass {
    /// Number of classes.
    pub const COUNT: usize = 5;
    /// All classes in index order.
    pub const ALL: [OutcomeClass; OutcomeClass::COUNT] = [
        OutcomeClass::Ok,
        OutcomeClass::Refused,
        OutcomeClass::Busy,
        OutcomeClass::Throttled,
        OutcomeClass::Error,
    ];

    /// Dense index, `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            OutcomeClass::Ok => 0,
            OutcomeClass::Refused => 1,
            OutcomeClass::Busy => 2,
            OutcomeClass::Throttled => 3,
            OutcomeClass::Error => 4,
        }
    }

    /// Name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            OutcomeClass::Ok => "ok",
            OutcomeClass::Refused => "refused",
            OutcomeClass::Busy => "busy",
            OutcomeClass::Throttled => "throttled",
            OutcomeClass::Error => "error",
        }
    }

    /// Parses a class name as written by [`OutcomeClass::name`].
    pub fn parse(s: &str) -> Option<OutcomeClass> {
        OutcomeClass::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One answer from a target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Outcome {
    /// The class.
    pub class: OutcomeClass,
    /// The response code as the target names it (`I0`, `E2`, `BUSY`…); short, static where
    /// possible so that recording costs no allocation.
    pub code: std::borrow::Cow<'static, str>,
    /// The lane the target put the request in.
    pub lane: Lane,
}

impl Outcome {
    /// A success in `lane` with code `I0`.
    pub fn ok(lane: Lane) -> Self {
        Outcome {
            class: OutcomeClass::Ok,
            code: "I0".into(),
            lane,
        }
    }

    /// Any outcome with a static code.
    pub fn new(class: OutcomeClass, code: &'static str, lane: Lane) -> Self {
        Outcome {
            class,
            code: code.into(),
            lane,
        }
    }

    /// A transport or target error.
    pub fn error(code: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Outcome {
            class: OutcomeClass::Error,
            code: code.into(),
            lane: Lane::None,
        }
    }
}
