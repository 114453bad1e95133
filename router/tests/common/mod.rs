//! Test world: a router with a manual clock, a recording dispatcher, Users with real P-256
//! keys and certificates, devices, and a request builder.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod serve;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use dcc_router::egress::{Command, DispatchReply, Dispatcher};
use dcc_router::state::CertRecord;
use dcc_router::{Clock, Device, Lane, Party, Policy, Router, State};
use dcc_signing::envelope::Header;
use dcc_signing::verify::{P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};

pub const NOW: u64 = 1_700_000_000;

/// A global sequence shared by the dispatcher and the tests (for happens-before checks).
pub static SEQ: AtomicU64 = AtomicU64::new(1);

pub fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

#[derive(Clone, Debug)]
pub struct Dispatched {
    pub seq: u64,
    pub request_id: RequestId,
    pub signer: CertId,
    pub lane: Lane,
    pub acting_for: Option<Eui64>,
    /// The CoS Party's counter-signature (SRV 6.23).
    pub cos: Option<dcc_router::CosCounterSignature>,
    /// What it counter-signs ([`Command::counter_signed_message`]).
    pub message: Vec<u8>,
}

/// Records every command it is handed, with a global sequence number, and answers delivered.
/// With `hold`, each hand-off takes that long before it is recorded (widens race windows).
#[derive(Debug, Default)]
pub struct Recorder {
    pub log: Mutex<Vec<Dispatched>>,
    pub hold: Option<std::time::Duration>,
}

impl Recorder {
    pub fn take(&self) -> Vec<Dispatched> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
    pub fn snapshot(&self) -> Vec<Dispatched> {
        self.log.lock().unwrap().clone()
    }
}

impl Dispatcher for Recorder {
    fn dispatch(&self, c: Command, reply: DispatchReply) {
        if let Some(h) = self.hold {
            std::thread::sleep(h);
        }
        self.log.lock().unwrap().push(Dispatched {
            seq: next_seq(),
            request_id: c.header.request_id,
            signer: c.header.signer,
            lane: c.lane,
            acting_for: c.acting_for,
            cos: c.cos.clone(),
            message: c.counter_signed_message().into_owned(),
        });
        reply.delivered();
    }
}

/// A verifier that blocks every batch until the gate opens, counting batches that entered.
#[derive(Debug, Default)]
pub struct GatedVerifier {
    open: Mutex<bool>,
    cv: Condvar,
    pub entered: AtomicU64,
}

impl GatedVerifier {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
    /// Waits until `n` batches entered verification (panics after 30 s rather than hang).
    pub fn wait_entered(&self, n: u64) {
        let start = std::time::Instant::now();
        while self.entered.load(Ordering::SeqCst) < n {
            assert!(start.elapsed().as_secs() < 30, "verifier never entered");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Verifier for GatedVerifier {
    fn name(&self) -> &str {
        "gated-p256"
    }
    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn PreparedKey> {
        P256Verifier.prepare(key)
    }
    fn verify_batch(&self, jobs: &[VerifyJob<'_>], out: &mut [bool]) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        P256Verifier.verify_batch(jobs, out);
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub eui: Eui64,
    pub signer: Signer,
    pub cert: CertId,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl User {
    pub fn new(eui: u64) -> Self {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        User {
            eui: Eui64::from_u64(eui),
            signer: Signer::random(),
            cert: CertId::new([0xCA; 8], &serial).unwrap(),
        }
    }

    pub fn record(&self) -> CertRecord {
        CertRecord {
            id: self.cert,
            owner: self.eui,
            public_key: self.signer.public_key(),
            not_before: NOW - 86_400,
            not_after: NOW + 365 * 86_400,
        }
    }
}

/// A request to build and sign.
#[derive(Clone, Debug)]
pub struct Req {
    pub role: UserRole,
    pub srv: Srv,
    pub cv: u8,
    pub execution: ExecutionKind,
    pub execute_at: u64,
    pub originator: Eui64,
    pub target: Eui64,
    pub counter: u64,
    pub signer_cert: CertId,
}

impl Req {
    /// An on-demand Import Supplier request from `u` to `target`.
    pub fn new(u: &User, srv: &str, cv: u8, target: Eui64, counter: u64) -> Self {
        Req {
            role: UserRole::ImportSupplier,
            srv: srv.parse().unwrap(),
            cv,
            execution: ExecutionKind::OnDemand,
            execute_at: 0,
            originator: u.eui,
            target,
            counter,
            signer_cert: u.cert,
        }
    }

    pub fn role(mut self, r: UserRole) -> Self {
        self.role = r;
        self
    }

    pub fn future_dated(mut self) -> Self {
        self.execution = ExecutionKind::FutureDated;
        self.execute_at = NOW + 3600;
        self
    }

    pub fn scheduled(mut self) -> Self {
        self.execution = ExecutionKind::DccScheduled;
        self.execute_at = NOW + 3600;
        self
    }

    pub fn signed_with(mut self, cert: CertId) -> Self {
        self.signer_cert = cert;
        self
    }

    pub fn from(mut self, originator: Eui64) -> Self {
        self.originator = originator;
        self
    }

    pub fn header(&self) -> Header {
        Header {
            role: self.role,
            command_variant: CommandVariant::new(self.cv).unwrap(),
            execution: self.execution,
            srv: self.srv,
            request_id: RequestId {
                originator: self.originator,
                target: self.target,
                counter: self.counter,
            },
            execute_at: self.execute_at,
            signer: self.signer_cert,
        }
    }

    /// Signs with `key`'s private key (normally the certificate's owner's).
    pub fn sign(&self, key: &User) -> Vec<u8> {
        key.signer
            .sign_envelope(&self.header(), b"gbcs-payload")
            .unwrap()
    }
}

pub const SUPPLIER: u64 = 0x90B3_D51F_3001_0000;
pub const SUPPLIER_B: u64 = 0x90B3_D51F_3002_0000;
pub const NETWORK_OPERATOR: u64 = 0x90B3_D51F_3003_0000;
pub const SRP: u64 = 0x90B3_D51F_30AA_0000;
pub const CREDIT_METER: u64 = 0x00DB_1234_5678_0001;
pub const PREPAY_METER: u64 = 0x00DB_1234_5678_0002;

pub struct World {
    pub router: Router,
    pub clock: Clock,
    pub recorder: Arc<Recorder>,
    pub supplier: User,
    pub supplier_b: User,
    pub network_operator: User,
    pub srp: User,
}

impl World {
    pub fn new() -> Self {
        Self::with(Policy::default(), Arc::new(P256Verifier), 2)
    }

    pub fn with(policy: Policy, verifier: Arc<dyn Verifier>, workers: usize) -> Self {
        Self::with_recorder(policy, verifier, workers, Recorder::default())
    }

    pub fn with_recorder(
        policy: Policy,
        verifier: Arc<dyn Verifier>,
        workers: usize,
        recorder: Recorder,
    ) -> Self {
        Self::build(policy, verifier, workers, recorder, None, None)
    }

    /// A world whose workers take at most `batch` requests at a time.
    pub fn with_batch(
        policy: Policy,
        verifier: Arc<dyn Verifier>,
        workers: usize,
        batch: usize,
    ) -> Self {
        Self::build(
            policy,
            verifier,
            workers,
            Recorder::default(),
            None,
            Some(batch),
        )
    }

    /// A world whose router makes state durable in `store`.
    pub fn with_store(store: Arc<dyn dcc_router::store::Store>) -> Self {
        Self::build(
            Policy::default(),
            Arc::new(P256Verifier),
            2,
            Recorder::default(),
            Some(store),
            None,
        )
    }

    fn build(
        policy: Policy,
        verifier: Arc<dyn Verifier>,
        workers: usize,
        recorder: Recorder,
        store: Option<Arc<dyn dcc_router::store::Store>>,
        batch: Option<usize>,
    ) -> Self {
        let clock = Clock::manual(NOW);
        let recorder = Arc::new(recorder);
        let mut builder = Router::builder()
            .policy(policy)
            .state(Arc::new(State::new()))
            .dispatcher(recorder.clone())
            .verifier(verifier)
            .workers(workers)
            .clock(clock.clone());
        if let Some(store) = store {
            builder = builder.store(store);
        }
        if let Some(batch) = batch {
            builder = builder.batch_size(batch);
        }
        let router = builder.build().unwrap();
        let w = World {
            router,
            clock,
            recorder,
            supplier: User::new(SUPPLIER),
            supplier_b: User::new(SUPPLIER_B),
            network_operator: User::new(NETWORK_OPERATOR),
            srp: User::new(SRP),
        };
        let admin = w.router.admin();
        use UserRole::*;
        for (u, roles) in [
            (&w.supplier, &[ImportSupplier, GasSupplier][..]),
            (&w.supplier_b, &[ImportSupplier, GasSupplier][..]),
            (&w.network_operator, &[ElectricityDistributor][..]),
            (&w.srp, &[ImportSupplier, GasSupplier][..]),
        ] {
            admin.upsert_party(u.eui, Party::approved(roles)).unwrap();
            admin.add_certificate(u.record()).unwrap();
        }
        let mut credit = Device::new(w.supplier.eui);
        credit.network_operator = Some(w.network_operator.eui);
        admin
            .upsert_device(Eui64::from_u64(CREDIT_METER), credit)
            .unwrap();
        let mut prepay = Device::new(w.supplier.eui);
        prepay.payment_mode = dcc_router::PaymentMode::Prepayment;
        admin
            .upsert_device(Eui64::from_u64(PREPAY_METER), prepay)
            .unwrap();
        w
    }

    pub fn credit(&self) -> Eui64 {
        Eui64::from_u64(CREDIT_METER)
    }

    pub fn prepay(&self) -> Eui64 {
        Eui64::from_u64(PREPAY_METER)
    }

    pub fn send(&self, bytes: Vec<u8>) -> dcc_router::Response {
        self.router.submit_blocking(bytes)
    }

    /// Submits as a connection authenticated as `user` would ([`dcc_router::Sender::User`]).
    pub fn send_from(&self, user: Eui64, bytes: Vec<u8>) -> dcc_router::Response {
        let (tx, rx) = std::sync::mpsc::channel();
        self.router
            .submit_from(dcc_router::Sender::User(user), bytes, move |r| {
                let _ = tx.send(r);
            });
        rx.recv().unwrap()
    }
}
