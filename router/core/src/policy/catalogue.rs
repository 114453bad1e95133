//! The SRV catalogue: for each Service Reference Variant, who may send it, which command
//! variants it allows, whether it is critical, which lane it goes to and whether it is in the
//! safe-mode set an SRP may send under a revocation-delayed certificate.

use std::collections::HashMap;
use std::fmt;

use dcc_signing::{CommandVariant, Srv, UserRole};

use crate::pipeline::lanes::Lane;

/// A set of DUIS User Roles, as a bit mask (bit = role code).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role.
    pub const EMPTY: RoleSet = RoleSet(0);

    /// The set holding these roles.
    pub fn of(roles: &[UserRole]) -> Self {
        roles.iter().fold(RoleSet::EMPTY, |s, r| s.with(*r))
    }

    /// This set plus `role`.
    pub const fn with(self, role: UserRole) -> Self {
        RoleSet(self.0 | (1 << role.code()))
    }

    /// Whether `role` is in the set.
    pub const fn contains(self, role: UserRole) -> bool {
        self.0 & (1 << role.code()) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(UserRole::ALL.iter().filter(|r| self.contains(**r)))
            .finish()
    }
}

/// A set of command variants (bit = CV number).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CvSet(u16);

impl CvSet {
    /// CVs 4–7: critical request and signed pre-commands.
    pub const CRITICAL: CvSet = CvSet(0b1111_0000);
    /// CVs 1–3: non-critical device requests.
    pub const NON_CRITICAL: CvSet = CvSet(0b1110);
    /// CV 8: non-device requests.
    pub const NON_DEVICE: CvSet = CvSet(1 << 8);

    /// The DUIS default rule (see the policy file's header).
    pub const fn default_for(critical: bool, non_device: bool) -> Self {
        if non_device {
            Self::NON_DEVICE
        } else if critical {
            Self::CRITICAL
        } else {
            Self::NON_CRITICAL
        }
    }

    /// The set holding these variants.
    pub fn of(cvs: &[CommandVariant]) -> Self {
        CvSet(cvs.iter().fold(0, |m, cv| m | (1 << cv.get())))
    }

    /// Whether `cv` is allowed.
    pub const fn contains(self, cv: CommandVariant) -> bool {
        self.0 & (1 << cv.get()) != 0
    }
}

impl fmt::Debug for CvSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((1..=8u8).filter(|v| self.0 & (1 << v) != 0))
            .finish()
    }
}

/// The SEC M8.6 right a Party must hold to send an SRV (tabasc-dp091-dp095.txt: "SEC Section
/// M8.6 states that in the event of a default, the Panel must request authorisation from Ofgem
/// to withdraw: (d) ... (h)"). M8.5's rights (voting, Draft Proposals, Change Board) are
/// governance and never needed to route a request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum ServiceRight {
    /// Core Communication Services or Local Command Services: needs M8.6 (d) when sent in the
    /// Other User role, M8.6 (e) in any other role.
    #[default]
    Core,
    /// An Elective Communication Service: needs M8.6 (f).
    Elective,
    /// Initiating enrolment (commissioning, joining, inventory): needs M8.6 (g) and the core
    /// right of the role.
    Enrolment,
    /// "Any or all Services other than those referred to elsewhere in this Section M8.6":
    /// needs M8.6 (h).
    Other,
}

/// One SRV's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvEntry {
    /// The SRV.
    pub srv: Srv,
    /// Its DUIS name.
    pub name: String,
    /// The User Roles that may send it (empty: nobody, until policy says otherwise).
    pub roles: RoleSet,
    /// Critical SRVs change supply or security state.
    pub critical: bool,
    /// Non-device requests target the DCC, not a device.
    pub non_device: bool,
    /// The lane for an on-demand request.
    pub lane: Lane,
    /// In the safe-mode set.
    pub safe_mode: bool,
    /// May be sent future-dated (DUIS matrix: "Future Dated Response Pattern" is not "No").
    pub future_dated: bool,
    /// May be sent as a DCC-scheduled request (DUIS matrix: "DCC Scheduled" is "Yes").
    pub dcc_scheduled: bool,
    /// Promoted to L1 when its target is in prepayment mode (the policy's
    /// `prepayment_priority` list: the SRVs that keep prepayment customers on supply).
    pub prepayment_priority: bool,
    /// The command variants allowed.
    pub cvs: CvSet,
    /// The right it needs.
    pub right: ServiceRight,
}

/// All SRVs the router knows. An SRV not in it is refused (E2).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    by_srv: HashMap<Srv, SrvEntry>,
}

impl Catalogue {
    /// Builds a catalogue; later entries replace earlier ones (callers check duplicates).
    pub fn new(entries: impl IntoIterator<Item = SrvEntry>) -> Self {
        Catalogue {
            by_srv: entries.into_iter().map(|e| (e.srv, e)).collect(),
        }
    }

    /// The entry for an SRV.
    pub fn get(&self, srv: Srv) -> Option<&SrvEntry> {
        self.by_srv.get(&srv)
    }

    /// Number of SRVs.
    pub fn len(&self) -> usize {
        self.by_srv.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.by_srv.is_empty()
    }

    /// Every entry (unordered).
    pub fn iter(&self) -> impl Iterator<Item = &SrvEntry> {
        self.by_srv.values()
    }

    /// The safe-mode set.
    pub fn safe_mode_srvs(&self) -> impl Iterator<Item = Srv> + '_ {
        self.iter().filter(|e| e.safe_mode).map(|e| e.srv)
    }
}
