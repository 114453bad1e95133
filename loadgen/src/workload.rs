//! Turning the scenario's mix into concrete requests.
//!
//! For request `i` of phase `p` the workload picks a mix entry by weight, a sender and a device,
//! and fills in a header — deterministically from `(seed, i)`, so that a scenario always offers
//! the same sequence whatever the number of signing threads. Only the anti-replay counter is
//! taken at signing time (fresh and increasing per originator).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dcc_signing::envelope::Header;
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, Srv, UserRole};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::population::World;
use crate::scenario::{Attack, DeviceSel, MixSpec, Party, Plan, Scenario};
use crate::target::WireForm;

#[derive(Clone, Debug)]
struct Entry {
    tag: usize,
    srv: Srv,
    from: Party,
    sign_as: Party,
    device: DeviceSel,
    role: Option<UserRole>,
    cv: CommandVariant,
    execution: ExecutionKind,
    attack: Option<Attack>,
    body_len: usize,
}

/// Who signs a draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignWith {
    /// The key of `World::users[i]`.
    User(usize),
    /// `World::users[i].more_keys[k]`.
    UserKey(usize, usize),
    /// The impostor key (unknown certificate).
    Impostor,
}

/// A request before signing.
#[derive(Clone, Debug)]
pub struct Draft {
    /// Every header field; the counter is filled in.
    pub header: Header,
    /// Body length.
    pub body_len: usize,
    /// Whose key signs.
    pub sign_with: SignWith,
    /// The User whose connection carries it (the originator).
    pub via: Option<usize>,
    /// Tag index.
    pub tag: usize,
    /// Deliberate defect.
    pub attack: Option<Attack>,
}

/// The mix, resolved.
#[derive(Debug)]
pub struct Workload {
    world: Arc<World>,
    entries: Vec<Entry>,
    /// Per schedule phase: cumulative weights and entry indices.
    tables: Vec<Vec<(f64, usize)>>,
    seed: u64,
    wire: WireForm,
}

/// A mix entry's SRV, command variant and execution, defaults applied.
fn resolve(m: &MixSpec) -> (Srv, CommandVariant, ExecutionKind) {
    let srv: Srv = m.srv.parse().unwrap_or(Srv::new2(2, 2));
    let cv =
        m.cv.and_then(CommandVariant::new)
            .unwrap_or(if m.device == DeviceSel::Dcc {
                CommandVariant::NON_DEVICE
            } else {
                CommandVariant::NON_CRITICAL_WAN
            });
    (srv, cv, m.execution.unwrap_or(ExecutionKind::OnDemand))
}

/// Every (SRV, command variant, execution) `scenario`'s mix sends: what a wire form other than
/// the envelope prepares for before the run (the DUIS target's template shapes).
pub fn request_kinds(scenario: &Scenario) -> Vec<(Srv, CommandVariant, ExecutionKind)> {
    scenario.mix.iter().map(resolve).collect()
}

impl Workload {
    /// Resolves the plan's mix against the world.
    pub fn new(plan: &Plan, world: Arc<World>) -> Workload {
        let sc = &plan.scenario;
        let entries: Vec<Entry> = sc
            .mix
            .iter()
            .map(|m| {
                let (srv, cv, execution) = resolve(m);
                Entry {
                    tag: plan.tag_index(&m.tag).unwrap_or(0),
                    srv,
                    from: m.from,
                    sign_as: m.sign_as.unwrap_or(m.from),
                    device: m.device,
                    role: m.role,
                    cv,
                    execution,
                    attack: m.attack,
                    body_len: m.body_len.unwrap_or(48),
                }
            })
            .collect();
        let tables = plan
            .mix_phase
            .iter()
            .map(|&sp| {
                let name = &sc.phases[sp].name;
                let mut acc = 0.0;
                sc.mix
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.phases.is_empty() || m.phases.contains(name))
                    .map(|(k, m)| {
                        acc += m.weight;
                        (acc, k)
                    })
                    .collect()
            })
            .collect();
        Workload {
            world,
            entries,
            tables,
            seed: sc.seed,
            wire: WireForm::Envelope,
        }
    }

    /// The same workload in another wire form (DUIS XML for the https/http targets).
    pub fn with_wire(mut self, wire: WireForm) -> Self {
        self.wire = wire;
        self
    }

    /// The wire form requests are prepared in.
    pub fn wire(&self) -> &WireForm {
        &self.wire
    }

    /// The world.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// Whether any entry replays earlier requests (the sender then keeps copies).
    pub fn has_replays(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.attack == Some(Attack::Replay))
    }

    fn pick_user(&self, party: Party, rng: &mut SmallRng) -> usize {
        let w = &self.world;
        let pool: &[usize] = match party {
            Party::Supplier if w.market().is_round_robin() => w.healthy_suppliers(),
            Party::Supplier => {
                // A national population: weighted by market share.
                let pool = w.healthy_suppliers();
                if pool.is_empty() {
                    return w.suppliers[0];
                }
                return pool[w.pick_healthy_supplier(rng.gen())];
            }
            Party::FailedSupplier => return w.failed.unwrap_or(w.suppliers[0]),
            Party::RogueSupplier => return w.rogue.unwrap_or(w.suppliers[0]),
            Party::NetworkOperator => &w.network_operators,
            Party::OtherUser => &w.other_users,
            Party::Srp => &w.srps,
        };
        if pool.is_empty() {
            return w.suppliers[0];
        }
        pool[rng.gen_range(0..pool.len())]
    }

    fn pick_device(&self, sel: DeviceSel, signer: usize, rng: &mut SmallRng) -> dcc_signing::Eui64 {
        let w = &self.world;
        let own = w.suppliers.iter().position(|&s| s == signer);
        let d = match sel {
            DeviceSel::Dcc => return w.dcc,
            DeviceSel::Any => rng.gen_range(0..w.devices),
            DeviceSel::Foreign => {
                let n = w.suppliers.len();
                let mine = own.unwrap_or(n);
                let mut other = rng.gen_range(0..n);
                if other == mine {
                    other = (other + 1) % n;
                }
                w.device_of_supplier(other, rng.gen())
            }
            _ => match own {
                None => match w.network_operators.iter().position(|&n| n == signer) {
                    Some(nth) => {
                        let mut d = w.device_of_network_operator(nth, rng.gen());
                        for _ in 0..64 {
                            if w.device_has_wan(d) {
                                break;
                            }
                            d = w.device_of_network_operator(nth, rng.gen());
                        }
                        d
                    }
                    None => rng.gen_range(0..w.devices),
                },
                Some(nth) => {
                    // Rejection-sample a device of the right payment mode; fall back to any own
                    // device when the population has none of that mode.
                    let want = match sel {
                        DeviceSel::OwnPrepayment => Some(true),
                        DeviceSel::OwnCredit => Some(false),
                        _ => None,
                    };
                    // Devices without an SM WAN (DP094) take only local delivery: skipped.
                    let fits = |d: u64| {
                        w.device_has_wan(d) && want.is_none_or(|p| w.device_prepayment(d) == p)
                    };
                    let mut d = w.device_of_supplier(nth, rng.gen());
                    for _ in 0..64 {
                        if fits(d) {
                            break;
                        }
                        d = w.device_of_supplier(nth, rng.gen());
                    }
                    d
                }
            },
        };
        w.device_eui(d)
    }

    /// The draft for request `index` in schedule phase `phase`; `None` when no entry is active.
    pub fn draft(&self, index: u64, phase: usize) -> Option<Draft> {
        let table = self.tables.get(phase).or(self.tables.last())?;
        let total = table.last()?.0;
        let mut rng =
            SmallRng::seed_from_u64(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let x = rng.gen_range(0.0..total);
        let k = table
            .iter()
            .find(|(c, _)| x < *c)
            .or(table.last())
            .map(|(_, k)| *k)?;
        let e = &self.entries[k];
        let w = &self.world;
        // The connection is whoever sends (`from`); the key is `sign_as`'s. They differ for a
        // Shared Resource Provider sending with a failed Supplier's certificate under a
        // revocation delay — MP134A as written (mp134a-solr-revocation-delay.txt: the SRP
        // sends "using the failed Supplier's certificates"): the request is originated as the
        // failed Supplier, signed with its key, and carried by the SRP's connection.
        let origin = self.pick_user(e.from, &mut rng);
        let signer = if e.sign_as == e.from {
            origin
        } else {
            self.pick_user(e.sign_as, &mut rng)
        };
        let via = Some(origin);
        let user = &w.users[signer];
        let key_owner = &w.users[signer];
        let role = e.role.unwrap_or(user.roles[0]);
        let target = self.pick_device(e.device, signer, &mut rng);
        let (cert, sign_with) = match e.attack {
            Some(Attack::UnknownCert) => (w.impostor.1, SignWith::Impostor),
            _ if key_owner.more_keys.is_empty() => (key_owner.cert, SignWith::User(signer)),
            _ => match rng.gen_range(0..=key_owner.more_keys.len()) {
                0 => (key_owner.cert, SignWith::User(signer)),
                k => (
                    key_owner.more_keys[k - 1].1,
                    SignWith::UserKey(signer, k - 1),
                ),
            },
        };
        let execute_at = match e.execution {
            ExecutionKind::OnDemand => 0,
            _ => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() + 86_400)
                .unwrap_or(1),
        };
        let counter = if e.attack == Some(Attack::Replay) {
            0
        } else {
            user.next_counter()
        };
        Some(Draft {
            header: Header {
                role,
                command_variant: e.cv,
                execution: e.execution,
                srv: e.srv,
                request_id: RequestId {
                    originator: user.eui,
                    target,
                    counter,
                },
                execute_at,
                signer: cert,
            },
            body_len: e.body_len,
            sign_with,
            via,
            tag: e.tag,
            attack: e.attack,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Scenario};
    use dcc_router::client::demo::{demo_device, demo_device_without_wan};
    use dcc_signing::pki::demo::DemoPki;

    /// Against a server's demo population, the mixes send CV 1 (over the SM WAN); a device
    /// without WAN would refuse it E20 (DP094), so the workload never picks one.
    #[test]
    fn drafts_never_target_a_device_without_wan() {
        let now = dcc_signing::pki::now_unix();
        let sc = Scenario::load("overload").unwrap();
        let world = World::from_pki(DemoPki::generate(now).unwrap(), &sc, 20_000, 30).unwrap();
        let no_wan: std::collections::HashSet<_> = (0..20_000u64)
            .filter(|&i| demo_device_without_wan(i, 30))
            .map(demo_device)
            .collect();
        assert!(
            no_wan.len() > 500,
            "the population has no-WAN devices to avoid"
        );
        for i in 0..20_000 {
            assert_eq!(world.device_has_wan(i), !demo_device_without_wan(i, 30));
        }
        let plan = Plan::build(sc, &Overrides::default(), Some(1000.0)).unwrap();
        let phases = plan.phase_names.len();
        let w = Workload::new(&plan, Arc::new(world));
        let mut prepayment_targets = 0;
        for i in 0..20_000u64 {
            let Some(d) = w.draft(i, (i as usize) % phases) else {
                continue;
            };
            let target = d.header.request_id.target;
            assert!(
                !no_wan.contains(&target),
                "request {i} targets a no-WAN device"
            );
            prepayment_targets += usize::from(d.header.srv == Srv::new2(2, 2));
        }
        assert!(prepayment_targets > 1000, "top-ups were drawn");
    }
}
