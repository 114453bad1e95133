//! DCC Users (Parties): the User Roles they hold, their security assurance status and their
//! suspended rights.

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

/// Rights a defaulting Party can lose (SEC M8.5/M8.6), as a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SuspendedRights(u8);

impl SuspendedRights {
    /// Nothing suspended.
    pub const NONE: Self = Self(0);
    /// Core services in the Other User role.
    pub const CORE_AS_OTHER_USER: Self = Self(1);
    /// Core services in any other role.
    pub const CORE_OTHER_ROLES: Self = Self(2);
    /// Elective services.
    pub const ELECTIVE: Self = Self(4);
    /// Initiating enrolment.
    pub const ENROLMENT: Self = Self(8);

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

    /// Whether any right in `other` is suspended.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether a request in `role` for a service needing `right` uses a suspended right.
    pub fn blocks(self, role: UserRole, right: ServiceRight) -> bool {
        let core = if role == UserRole::OtherUser {
            Self::CORE_AS_OTHER_USER
        } else {
            Self::CORE_OTHER_ROLES
        };
        let needed = match right {
            ServiceRight::Core => core,
            ServiceRight::Elective => Self::ELECTIVE,
            ServiceRight::Enrolment => core.union(Self::ENROLMENT),
        };
        self.intersects(needed)
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
