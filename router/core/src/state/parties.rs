//! DCC Users (Parties): the User Roles they hold, their security assurance status (DP091) and
//! their suspended rights (SEC M8.6 (d)–(h)).

use dashmap::DashMap;
use dcc_signing::{Eui64, UserRole};

use crate::policy::{RateLimit, RoleSet, ServiceRight};

/// Security assurance status (DP091). Only the first two may send Service Requests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum AssuranceStatus {
    /// Approved.
    Approved,
    /// Approved with conditions.
    ApprovedWithConditions,
    /// Deferred.
    Deferred,
    /// Rejected.
    Rejected,
}

impl AssuranceStatus {
    /// Whether a User in this status may send Service Requests.
    pub const fn may_send(self) -> bool {
        matches!(
            self,
            AssuranceStatus::Approved | AssuranceStatus::ApprovedWithConditions
        )
    }
}

/// Service rights a defaulting Party can lose with the Authority's approval, SEC M8.6 (d)–(h),
/// as a bit set (tabasc-dp091-dp095.txt, DP095: "SEC Section M8.6 states that in the event of
/// a default, the Panel must request authorisation from Ofgem to withdraw: (d) ... (h)").
///
/// SEC M8.5 (voting, raising Draft Proposals, Change Board appointments) is governance and has
/// nothing to route, so it has no bit here. The bit values are stored (`StoredParty`):
/// they never change meaning; (h) is the new bit 16, unknown to older versions, which keep it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SuspendedRights(u8);

impl SuspendedRights {
    /// Nothing suspended.
    pub const NONE: Self = Self(0);
    /// M8.6 (d): "Core Communication Services or Local Command Services in the 'Other User'
    /// User Role".
    pub const M8_6_D_CORE_AS_OTHER_USER: Self = Self(1);
    /// M8.6 (e): the same "in any User Role other than the 'Other User' User Role".
    pub const M8_6_E_CORE_OTHER_ROLES: Self = Self(2);
    /// M8.6 (f): "any or all Elective Communication Services".
    pub const M8_6_F_ELECTIVE: Self = Self(4);
    /// M8.6 (g): "to initiate Enrolment of Smart Metering Systems".
    pub const M8_6_G_ENROLMENT: Self = Self(8);
    /// M8.6 (h): "any or all Services other than those referred to elsewhere in this Section
    /// M8.6".
    pub const M8_6_H_OTHER_SERVICES: Self = Self(16);

    /// The bits (for the store).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From stored bits (unknown bits kept: a newer version's rights stay suspended).
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The union.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Without `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The letters of the suspended rights, `"(e)(g)"`, for audit details and status answers.
    pub fn letters(self) -> String {
        ["(d)", "(e)", "(f)", "(g)", "(h)"]
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, l)| *l)
            .collect()
    }

    /// Whether any right in `other` is suspended.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether a request in `role` for a service needing `right` uses a suspended right.
    pub fn blocks(self, role: UserRole, right: ServiceRight) -> bool {
        self.blocked_by(role, right).is_some()
    }

    /// The suspended M8.6 right such a request needs, as a refusal detail
    /// (`m8.6-e-suspended`), or `None` when it may be sent.
    pub fn blocked_by(self, role: UserRole, right: ServiceRight) -> Option<&'static str> {
        const DETAILS: [&str; 5] = [
            "m8.6-d-suspended",
            "m8.6-e-suspended",
            "m8.6-f-suspended",
            "m8.6-g-suspended",
            "m8.6-h-suspended",
        ];
        let hit = self.0 & Self::needed(role, right).0;
        DETAILS
            .iter()
            .enumerate()
            .find(|(i, _)| hit & (1 << i) != 0)
            .map(|(_, d)| *d)
    }

    /// The rights a request in `role` for a service needing `right` uses.
    fn needed(role: UserRole, right: ServiceRight) -> Self {
        let core = if role == UserRole::OtherUser {
            Self::M8_6_D_CORE_AS_OTHER_USER
        } else {
            Self::M8_6_E_CORE_OTHER_ROLES
        };
        match right {
            ServiceRight::Core => core,
            ServiceRight::Elective => Self::M8_6_F_ELECTIVE,
            ServiceRight::Enrolment => core.union(Self::M8_6_G_ENROLMENT),
            ServiceRight::Other => Self::M8_6_H_OTHER_SERVICES,
        }
    }
}

/// One DCC User.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Party {
    /// The User Roles it holds.
    pub roles: RoleSet,
    /// Security assurance status.
    pub assurance: AssuranceStatus,
    /// Suspended rights.
    pub suspended: SuspendedRights,
    /// A rate limit replacing the policy's for this User.
    pub rate_limit: Option<RateLimit>,
}

impl Party {
    /// An approved Party holding `roles`, nothing suspended.
    pub fn approved(roles: &[UserRole]) -> Self {
        Party {
            roles: RoleSet::of(roles),
            assurance: AssuranceStatus::Approved,
            suspended: SuspendedRights::NONE,
            rate_limit: None,
        }
    }
}

/// User id → Party. Hundreds of entries, read on every request.
#[derive(Debug, Default)]
pub struct Parties {
    map: DashMap<Eui64, Party>,
}

impl Parties {
    /// A copy of a Party.
    pub fn get(&self, id: Eui64) -> Option<Party> {
        self.map.get(&id).map(|p| *p)
    }

    /// Number of Parties.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn upsert(&self, id: Eui64, party: Party) {
        self.map.insert(id, party);
    }
}
