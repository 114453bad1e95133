//! The simulated world a scenario runs in: Users with keys and certificates, and devices.
//!
//! Users are few (hundreds at most) and carry one or more signing keys with their certificate
//! ids, and an anti-replay counter. Devices are many (millions possible) and are *not* stored: a device is
//! its index, and its EUI-64, registered Supplier and payment mode are pure functions of that
//! index, so a population of millions costs nothing until a target registers it.

use std::sync::atomic::AtomicU64;

use std::path::{Path, PathBuf};

use dcc_router::client::demo::DemoMarket;
use dcc_signing::duis::IssuerSerial;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::{CertId, Eui64, RemotePartyRole, Signer, UserRole};

use crate::instance::{CounterClock, Instance};
use crate::scenario::{Party, PopulationSpec, Scenario};

/// Why a population could not be read from a PKI directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiPopulationError {
    /// The directory could not be read (missing, or a key does not match its certificate).
    #[error(
        "PKI directory {dir}: {source} (start `dcc-router serve` once to create it, or pass --pki)"
    )]
    Pki {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: dcc_signing::pki::PkiError,
    },
    /// The scenario sends as a kind of party the directory has no User for.
    #[error("the PKI directory cannot play scenario {scenario:?}: {why}")]
    Missing {
        /// The scenario.
        scenario: String,
        /// What is missing.
        why: String,
    },
}

/// Directory name of the demo PKI's admin User (it speaks the admin protocol, never SRs).
pub const PKI_ADMIN_NAME: &str = dcc_router::client::demo::DEMO_ADMIN_NAME;
/// Directory name of the demo PKI's Shared Resource Provider (the server does not register
/// devices for it).
pub const PKI_SRP_NAME: &str = "srp";

/// One DCC User.
#[derive(Debug)]
pub struct User {
    /// A name for reports and PKI look-ups (the directory name under `users/` for a
    /// population read from a PKI directory).
    pub name: String,
    /// Business ID.
    pub eui: Eui64,
    /// What kind of party it is.
    pub party: Party,
    /// User Roles held.
    pub roles: Vec<UserRole>,
    /// SMKI remote-party role of its Organisation Certificate.
    pub remote_role: RemotePartyRole,
    /// Its Organisation Certificate's id.
    pub cert: CertId,
    /// Its signing key.
    pub signer: Signer,
    /// How DUIS XML-DSig names its certificate (`X509IssuerSerial`): known for a population
    /// read from a PKI directory, `None` for loadgen's own (which has no certificates).
    pub xml_id: Option<IssuerSerial>,
    /// Its other Organisation Certificates' keys and ids (a national population's Users hold
    /// several; requests are spread evenly over all of a User's keys).
    pub more_keys: Vec<(Signer, CertId)>,
    /// The DUIS names (`X509IssuerSerial`) of `more_keys`' certificates, in the same order
    /// (empty for loadgen's own population).
    pub more_xml_ids: Vec<IssuerSerial>,
    /// The last anti-replay counter drawn (0: none yet).
    counter: AtomicU64,
    /// Where counters come from: the clock, in this process's residue class
    /// ([`crate::instance`]).
    counters: CounterClock,
}

impl User {
    /// The next anti-replay counter: fresh and increasing across every signing thread, and
    /// disjoint from other loadgen instances' ([`crate::instance`]).
    pub fn next_counter(&self) -> u64 {
        self.counters.draw(&self.counter)
    }
}

/// Users, devices, and the DCC.
#[derive(Debug)]
pub struct World {
    /// Every User, indexed by the vectors below.
    pub users: Vec<User>,
    /// Supplier Users; when the population has a failed Supplier it is `suppliers[0]`.
    pub suppliers: Vec<usize>,
    /// Electricity Distributors.
    pub network_operators: Vec<usize>,
    /// Other Users.
    pub other_users: Vec<usize>,
    /// Shared Resource Providers.
    pub srps: Vec<usize>,
    /// The failed Supplier, if any.
    pub failed: Option<usize>,
    /// The rogue Supplier, if any: the last of `suppliers`.
    pub rogue: Option<usize>,
    /// Number of devices.
    pub devices: u64,
    devices_rule: DeviceRule,
    /// Which Supplier (position in `suppliers`) each device belongs to.
    market: DemoMarket,
    /// Cumulative market shares of [`World::healthy_suppliers`], for weighting traffic.
    healthy_cdf: Vec<f64>,
    /// The DCC's EUI-64 (target of non-device requests).
    pub dcc: Eui64,
    /// A key and certificate id the target never sees (for the unknown-certificate attack).
    pub impostor: (Signer, CertId),
    /// Issuer name of the demo certificates (hashed into every [`CertId`]).
    pub issuer_name: &'static [u8],
}

/// How device indices map to EUI-64s and payment modes.
#[derive(Clone, Copy, Debug)]
enum DeviceRule {
    /// loadgen's own population: EUI-64 from [`DEVICE_BASE`], prepayment by a hash of the
    /// index (so that prepayment devices are spread over every Supplier).
    Generated { prepayment_permille: u64 },
    /// `dcc-router serve`'s demo devices (`dcc_router::client::demo`): EUI-64 from
    /// `DEMO_DEVICE_BASE`, prepayment when *i* mod 100 < the percentage.
    Server { prepayment_percent: u64 },
}

/// Issuer handle used by every demo certificate id.
pub const DEMO_ISSUER: &[u8] = b"CN=loadgen demo Organisation CA";

const USER_BASE: u64 = 0x90B3_D51F_3000_0000;
const DEVICE_BASE: u64 = 0x00DB_0000_0000_0000;
/// The DCC's EUI-64 in the simulated world: all zeros, as in dcc-router's default policy.
pub const DCC_EUI: u64 = 0;

fn mix64(mut x: u64) -> u64 {
    // splitmix64 finaliser: a cheap, well-spread hash of the device index.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl World {
    /// Builds the population: fresh random keys, certificate ids under [`DEMO_ISSUER`].
    pub fn new(spec: &PopulationSpec) -> World {
        let issuer = CertId::issuer_hash_of(DEMO_ISSUER);
        // Counters follow the clock, so that a second run against a long-lived router still
        // sends counters above the first run's ([`crate::instance`]).
        let counters = CounterClock::default();
        let mut users = Vec::new();
        let mut add = |party: Party, n: usize, roles: &[UserRole], rr: RemotePartyRole| {
            (0..n)
                .map(|_| {
                    let idx = users.len();
                    let serial = (idx as u64 + 1).to_be_bytes();
                    users.push(User {
                        name: format!("{party:?}-{idx}").to_lowercase(),
                        eui: Eui64::from_u64(USER_BASE + idx as u64),
                        party,
                        roles: roles.to_vec(),
                        remote_role: rr,
                        cert: CertId::new(issuer, &serial).unwrap_or_else(unreachable_cert),
                        signer: Signer::random(),
                        xml_id: None,
                        more_keys: Vec::new(),
                        more_xml_ids: Vec::new(),
                        counter: AtomicU64::new(0),
                        counters,
                    });
                    idx
                })
                .collect::<Vec<_>>()
        };
        let suppliers = add(
            Party::Supplier,
            spec.suppliers,
            &[UserRole::ImportSupplier, UserRole::GasSupplier],
            RemotePartyRole::Supplier,
        );
        let network_operators = add(
            Party::NetworkOperator,
            spec.network_operators,
            &[UserRole::ElectricityDistributor],
            RemotePartyRole::NetworkOperator,
        );
        let other_users = add(
            Party::OtherUser,
            spec.other_users,
            &[UserRole::OtherUser],
            RemotePartyRole::Other,
        );
        // An SRP holds supplier roles of its own: it is itself a (small) Supplier's agent.
        let srps = add(
            Party::Srp,
            spec.srps,
            &[UserRole::ImportSupplier, UserRole::GasSupplier],
            RemotePartyRole::Supplier,
        );
        let failed = spec.failed_supplier.then(|| suppliers[0]);
        if let Some(f) = failed {
            users[f].party = Party::FailedSupplier;
        }
        let rogue = spec
            .rogue_supplier
            .then(|| suppliers.last().copied())
            .flatten();
        if let Some(r) = rogue {
            users[r].party = Party::RogueSupplier;
        }
        let impostor_cert =
            CertId::new(issuer, &[0x7E, 0xAD, 0xBE, 0xEF, 0x01]).unwrap_or_else(unreachable_cert);
        let market = DemoMarket::new(suppliers.len(), spec.devices.max(1));
        let mut w = World {
            users,
            suppliers,
            network_operators,
            other_users,
            srps,
            failed,
            rogue,
            devices: spec.devices.max(1),
            market,
            healthy_cdf: Vec::new(),
            devices_rule: DeviceRule::Generated {
                prepayment_permille: (spec.prepayment_share * 1000.0).round() as u64,
            },
            dcc: Eui64::from_u64(DCC_EUI),
            impostor: (Signer::random(), impostor_cert),
            issuer_name: DEMO_ISSUER,
        };
        w.weigh_suppliers();
        w
    }

    /// This process as instance `instance` of several sending as the same Users
    /// (`--instance K/N`): every User's counters from now on come from the instance's residue
    /// class ([`crate::instance`]). Call before the first request is drawn.
    pub fn with_instance(mut self, instance: Instance) -> World {
        let counters = CounterClock::new(instance);
        for u in &mut self.users {
            u.counters = counters;
        }
        self
    }

    /// The instance this population draws counters for.
    pub fn instance(&self) -> Instance {
        self.users
            .first()
            .map_or(Instance::SOLE, |u| u.counters.instance())
    }

    /// The population of a `dcc-router serve` instance, read from its PKI directory: the
    /// directory's Users with their real signing keys and certificate ids, and the server's demo
    /// devices (`devices` of them, `prepayment_percent` % in prepayment), assigned to Suppliers
    /// by the server's rule (`dcc_router::client::demo`).
    ///
    /// The scenario's `[population]` counts do not apply: the directory decides how many Users
    /// of each kind there are. Mapping, by directory name order:
    ///
    /// * Suppliers: every Supplier-role User except `srp` (the server's device rule uses the
    ///   same list), the first of them failing when the scenario has a failed Supplier;
    /// * network operators: every network-operator User (device *d* is the *d* mod *m*-th's,
    ///   as the server registers them);
    /// * devices belong to Suppliers by [`DemoMarket`] (round robin for up to 4 Suppliers,
    ///   Zipf shares for a national population), and Supplier traffic is weighted by those
    ///   shares ([`World::pick_healthy_supplier`]);
    /// * a User with several Organisation Certificates (`cert-2.pem`…) signs with all of them
    ///   in turn, so the target's verifier sees every key;
    /// * SRP: the User `srp`; Other Users: other-role Users except `admin`.
    ///
    /// A scenario whose mix sends as a kind of party the directory lacks is refused.
    pub fn from_pki_dir(
        dir: &Path,
        scenario: &Scenario,
        devices: u64,
        prepayment_percent: u8,
    ) -> Result<World, PkiPopulationError> {
        let pki = DemoPki::load_from_dir(dir).map_err(|source| PkiPopulationError::Pki {
            dir: dir.to_path_buf(),
            source,
        })?;
        World::from_pki(pki, scenario, devices, prepayment_percent)
    }

    /// [`World::from_pki_dir`] over a PKI already loaded.
    pub fn from_pki(
        pki: DemoPki,
        scenario: &Scenario,
        devices: u64,
        prepayment_percent: u8,
    ) -> Result<World, PkiPopulationError> {
        let counters = CounterClock::default();
        let mut demo = pki.users;
        demo.sort_by(|a, b| a.name.cmp(&b.name));
        let admin_eui = dcc_router::client::demo::DEMO_ADMIN;
        let mut w = World {
            users: Vec::new(),
            suppliers: Vec::new(),
            network_operators: Vec::new(),
            other_users: Vec::new(),
            srps: Vec::new(),
            failed: None,
            rogue: None,
            devices: devices.max(1),
            market: DemoMarket::new(1, devices.max(1)),
            healthy_cdf: Vec::new(),
            devices_rule: DeviceRule::Server {
                prepayment_percent: u64::from(prepayment_percent),
            },
            dcc: Eui64::from_u64(DCC_EUI),
            impostor: (
                Signer::random(),
                CertId::new(
                    CertId::issuer_hash_of(DEMO_ISSUER),
                    &[0x7E, 0xAD, 0xBE, 0xEF, 0x01],
                )
                .unwrap_or_else(unreachable_cert),
            ),
            issuer_name: DEMO_ISSUER,
        };
        for u in demo {
            if u.name == PKI_ADMIN_NAME || u.eui64 == admin_eui {
                continue;
            }
            let (party, pool) = match u.role {
                RemotePartyRole::Supplier if u.name == PKI_SRP_NAME => (Party::Srp, &mut w.srps),
                RemotePartyRole::Supplier => (Party::Supplier, &mut w.suppliers),
                RemotePartyRole::NetworkOperator => {
                    (Party::NetworkOperator, &mut w.network_operators)
                }
                RemotePartyRole::Other => (Party::OtherUser, &mut w.other_users),
                _ => continue,
            };
            if u.user_roles.is_empty() {
                continue;
            }
            pool.push(w.users.len());
            w.users.push(User {
                name: u.name,
                eui: u.eui64,
                party,
                roles: u.user_roles,
                remote_role: u.role,
                cert: u.cert.id,
                xml_id: Some(IssuerSerial::of(&u.cert)),
                signer: u.signer,
                more_xml_ids: u
                    .more_certs
                    .iter()
                    .map(|c| IssuerSerial::of(&c.cert))
                    .collect(),
                more_keys: u
                    .more_certs
                    .into_iter()
                    .map(|c| (c.signer, c.cert.id))
                    .collect(),
                counter: AtomicU64::new(0),
                counters,
            });
        }
        let missing = |why: String| PkiPopulationError::Missing {
            scenario: scenario.name.clone(),
            why,
        };
        if scenario.population.failed_supplier {
            if w.suppliers.len() < 2 {
                return Err(missing(format!(
                    "a failed Supplier needs at least 2 Supplier Users, the directory has {}",
                    w.suppliers.len()
                )));
            }
            w.failed = Some(w.suppliers[0]);
            w.users[w.suppliers[0]].party = Party::FailedSupplier;
        }
        if scenario.population.rogue_supplier {
            let special = 1 + usize::from(w.failed.is_some());
            if w.suppliers.len() <= special {
                return Err(missing(format!(
                    "a rogue Supplier needs at least {} Supplier Users, the directory has {}",
                    special + 1,
                    w.suppliers.len()
                )));
            }
            let r = w.suppliers[w.suppliers.len() - 1];
            w.rogue = Some(r);
            w.users[r].party = Party::RogueSupplier;
        }
        w.market = DemoMarket::new(w.suppliers.len(), w.devices);
        w.weigh_suppliers();
        for m in &scenario.mix {
            for p in [Some(m.from), m.sign_as].into_iter().flatten() {
                let have = match p {
                    Party::Supplier => !w.healthy_suppliers().is_empty(),
                    Party::FailedSupplier => w.failed.is_some(),
                    Party::RogueSupplier => w.rogue.is_some(),
                    Party::NetworkOperator => !w.network_operators.is_empty(),
                    Party::OtherUser => !w.other_users.is_empty(),
                    Party::Srp => !w.srps.is_empty(),
                };
                if !have {
                    return Err(missing(format!(
                        "mix entry {:?} sends as {p:?}, and the directory has no such User",
                        m.tag
                    )));
                }
            }
        }
        Ok(w)
    }

    /// Cumulative market shares of the healthy Suppliers (empty for round robin: they are
    /// then picked uniformly, as they hold equal shares).
    fn weigh_suppliers(&mut self) {
        self.healthy_cdf.clear();
        if self.market.is_round_robin() {
            return;
        }
        let first = usize::from(self.failed.is_some() && self.suppliers.len() > 1);
        let mut sum = 0.0;
        for k in first..first + self.healthy_suppliers().len() {
            sum += self.market.share(k);
            self.healthy_cdf.push(sum);
        }
    }

    /// A healthy Supplier for a uniform `x` in [0, 1), weighted by market share (the position
    /// in [`World::healthy_suppliers`]): traffic follows devices, so a few large Suppliers
    /// send most of it.
    pub fn pick_healthy_supplier(&self, x: f64) -> usize {
        let n = self.healthy_suppliers().len();
        match self.healthy_cdf.last() {
            Some(&total) => self
                .healthy_cdf
                .partition_point(|&c| c <= x * total)
                .min(n.saturating_sub(1)),
            None => ((x * n as f64) as usize).min(n.saturating_sub(1)),
        }
    }

    /// Every signing key the Users hold (what the target's verifier has loaded for them).
    pub fn signing_keys(&self) -> usize {
        self.users.iter().map(|u| 1 + u.more_keys.len()).sum()
    }

    /// The device market: which Supplier holds which devices.
    pub fn market(&self) -> &DemoMarket {
        &self.market
    }

    /// Suppliers that neither fail nor are rogue (the failed one is first, the rogue one last).
    pub fn healthy_suppliers(&self) -> &[usize] {
        let mut s = &self.suppliers[..];
        if self.failed.is_some() && s.len() > 1 {
            s = &s[1..];
        }
        if self.rogue.is_some() && s.len() > 1 {
            s = &s[..s.len() - 1];
        }
        s
    }

    /// The EUI-64 of device `d`.
    pub fn device_eui(&self, d: u64) -> Eui64 {
        match self.devices_rule {
            DeviceRule::Generated { .. } => Eui64::from_u64(DEVICE_BASE + d),
            DeviceRule::Server { .. } => dcc_router::client::demo::demo_device(d),
        }
    }

    /// The User index of the Supplier registered for device `d`.
    pub fn device_supplier(&self, d: u64) -> usize {
        self.suppliers[self.market.supplier_of(d).min(self.suppliers.len() - 1)]
    }

    /// Whether device `d` is in prepayment mode.
    pub fn device_prepayment(&self, d: u64) -> bool {
        match self.devices_rule {
            DeviceRule::Generated {
                prepayment_permille,
            } => mix64(d) % 1000 < prepayment_permille,
            DeviceRule::Server { prepayment_percent } => d % 100 < prepayment_percent,
        }
    }

    /// Whether device `d` has an SM WAN (DP094). loadgen's own population always has one; the
    /// server's demo devices follow [`dcc_router::client::demo::demo_device_without_wan`].
    /// Scenario mixes send CV 1 (send to the device over the WAN), which a no-WAN device refuses
    /// E20, so device selection skips such devices.
    pub fn device_has_wan(&self, d: u64) -> bool {
        match self.devices_rule {
            DeviceRule::Generated { .. } => true,
            DeviceRule::Server { prepayment_percent } => {
                // The rule takes the percentage as u8; anything larger means every device.
                let pct = u8::try_from(prepayment_percent).unwrap_or(u8::MAX);
                !dcc_router::client::demo::demo_device_without_wan(d, pct)
            }
        }
    }

    /// The User index of the network operator registered for device `d`, if there are any.
    pub fn device_network_operator(&self, d: u64) -> Option<usize> {
        let n = self.network_operators.len() as u64;
        (n > 0).then(|| self.network_operators[(d % n) as usize])
    }

    /// A device of network operator `nth` (its position in [`World::network_operators`]).
    pub fn device_of_network_operator(&self, nth: usize, r: u64) -> u64 {
        let n = self.network_operators.len().max(1) as u64;
        let per = (self.devices / n).max(1);
        ((r % per) * n + nth as u64).min(self.devices - 1)
    }

    /// A device of Supplier `nth` (its position in [`World::suppliers`]) for a random `r`.
    pub fn device_of_supplier(&self, nth: usize, r: u64) -> u64 {
        self.market.device_of(nth, r)
    }
}

#[allow(clippy::expect_used)]
fn unreachable_cert() -> CertId {
    CertId::new([0; 8], &[1]).expect("a one-byte non-zero serial is valid")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_rogue_supplier_is_the_last_and_not_healthy() {
        let spec = PopulationSpec {
            suppliers: 4,
            failed_supplier: true,
            rogue_supplier: true,
            ..PopulationSpec::default()
        };
        let w = World::new(&spec);
        assert_eq!(w.failed, Some(w.suppliers[0]));
        assert_eq!(w.rogue, Some(w.suppliers[3]));
        assert_eq!(w.users[w.suppliers[3]].party, Party::RogueSupplier);
        assert_eq!(w.healthy_suppliers(), &w.suppliers[1..3]);
        // attack: its flood comes from the rogue Supplier alone.
        let attack = Scenario::load("attack").unwrap();
        let w = World::new(&attack.population);
        assert_eq!(w.rogue, w.suppliers.last().copied());
        assert!(!w.healthy_suppliers().contains(&w.rogue.unwrap()));
    }

    #[test]
    fn devices_are_spread_and_prepayment_share_holds() {
        let spec = PopulationSpec {
            suppliers: 4,
            devices: 10_000,
            prepayment_share: 0.25,
            failed_supplier: true,
            ..PopulationSpec::default()
        };
        let w = World::new(&spec);
        assert_eq!(w.failed, Some(w.suppliers[0]));
        assert_eq!(w.healthy_suppliers().len(), 3);
        let pre = (0..w.devices).filter(|&d| w.device_prepayment(d)).count();
        assert!((2300..2700).contains(&pre), "{pre}");
        for r in 0..100 {
            let d = w.device_of_supplier(2, r * 7919);
            assert_eq!(w.device_supplier(d), w.suppliers[2]);
        }
        let u = &w.users[0];
        let a = u.next_counter();
        assert_eq!(u.next_counter(), a + 1, "the only instance counts densely");
        let w = w.with_instance(Instance::new(2, 3).unwrap());
        assert_eq!(w.instance().to_string(), "2/3");
        let u = &w.users[0];
        let b = u.next_counter();
        assert!(b > a + 1);
        assert_eq!(b % 3, 1, "instance 2 of 3 draws counters ≡ 1 mod 3");
        let c = u.next_counter();
        assert!(c >= b + 3 && c % 3 == 1);
    }

    #[test]
    fn a_pki_population_follows_the_servers_device_rule() {
        use dcc_router::client::demo::demo_device;
        let now = dcc_signing::pki::now_unix();
        let steady = Scenario::load("steady").unwrap();
        let w = World::from_pki(DemoPki::generate(now).unwrap(), &steady, 1000, 30).unwrap();
        let names = |v: &[usize]| {
            v.iter()
                .map(|&i| w.users[i].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&w.suppliers), ["supplier-a", "supplier-b"]);
        assert_eq!(names(&w.network_operators), ["netop"]);
        assert_eq!(names(&w.srps), ["srp"]);
        assert!(w.users.iter().all(|u| u.name != "admin"));
        assert_eq!(w.failed, None);
        for d in [0u64, 1, 29, 30, 99, 100, 131, 999] {
            assert_eq!(w.device_eui(d), demo_device(d));
            assert_eq!(w.device_prepayment(d), d % 100 < 30, "{d}");
            assert_eq!(w.device_supplier(d), w.suppliers[(d % 2) as usize]);
        }
        for r in 0..200 {
            let d = w.device_of_supplier(1, r * 7919);
            assert!(d < 1000);
            assert_eq!(w.device_supplier(d), w.suppliers[1]);
        }
        // solr: the first Supplier fails, the second stays healthy.
        let solr = Scenario::load("solr").unwrap();
        let w = World::from_pki(DemoPki::generate(now).unwrap(), &solr, 1000, 30).unwrap();
        assert_eq!(w.failed, Some(w.suppliers[0]));
        assert_eq!(w.healthy_suppliers(), &w.suppliers[1..]);
        // attack sends as an Other User, which the demo directory does not have.
        let attack = Scenario::load("attack").unwrap();
        let err = World::from_pki(DemoPki::generate(now).unwrap(), &attack, 1000, 30)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OtherUser"), "{err}");
    }

    #[test]
    fn a_national_population_spreads_traffic_by_zipf_and_signs_with_every_key() {
        use dcc_signing::pki::demo::Population;
        let now = dcc_signing::pki::now_unix();
        let population = Population {
            suppliers: 20,
            network_operators: 3,
            certs_per_user: 3,
            ..Population::default()
        };
        let pki = DemoPki::generate_population(now, &population, Some(11)).unwrap();
        let steady = Scenario::load("steady").unwrap();
        let w = World::from_pki(pki, &steady, 100_000, 30).unwrap();
        // supplier-0001…0020, supplier-a, supplier-b; netop, netop-0001…0003.
        assert_eq!(w.suppliers.len(), 22);
        assert_eq!(w.network_operators.len(), 4);
        assert_eq!(w.users[w.suppliers[0]].name, "supplier-0001");
        // 23 national Users with 3 keys, the standard ones (but admin) with 1.
        assert_eq!(w.signing_keys(), 23 * 3 + 4);
        assert!(!w.market().is_round_robin());
        for k in [0usize, 5, 21] {
            for r in [0u64, 7, 99_999] {
                let d = w.device_of_supplier(k, r);
                assert_eq!(w.device_supplier(d), w.suppliers[k]);
            }
        }
        // Traffic follows the market: the largest Supplier sends ≈ 1/H(22) ≈ 27 %.
        let n = 20_000;
        let top = (0..n)
            .filter(|i| w.pick_healthy_supplier((*i as f64 + 0.5) / n as f64) == 0)
            .count();
        let share = top as f64 / n as f64;
        assert!((share - w.market().share(0)).abs() < 0.01, "{share}");
        assert!((0.25..0.29).contains(&share), "{share}");
        // And the drafts sign with every key of a User, not only its first.
        let plan = crate::scenario::Plan::build(
            steady,
            &crate::scenario::Overrides {
                rate: Some(100.0),
                ..crate::scenario::Overrides::default()
            },
            None,
        )
        .unwrap();
        let workload = crate::workload::Workload::new(&plan, std::sync::Arc::new(w));
        let keys: std::collections::HashSet<_> = (0..4_000)
            .filter_map(|i| workload.draft(i, 0))
            .map(|d| d.header.signer)
            .collect();
        assert!(keys.len() > 30, "{} distinct keys", keys.len());
    }
}
