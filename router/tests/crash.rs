//! Crash and restart, as a user meets them: the real `dcc-router serve` binary as a child
//! process on a temp data dir, driven over QUIC (pipelined, mutual TLS) by supplier-a and
//! supplier-b at about 1,000 requests/s while an admin changes state at random moments; then
//! the process is killed (SIGKILL) — or stopped (SIGTERM, exit 0) — at a random moment and
//! restarted on the same data dir and port. After each restart:
//!
//! * every envelope ever sent is sent again over fresh connections: none answered accepted
//!   (I0/I99) before is accepted again (refused R7, or R3/R8/E4/E5 where an admin change in
//!   force explains it);
//! * every admin change answered ok before the stop is in force: probed with fresh envelopes
//!   (R3 for a revoked certificate, R8 for a suspended right, E5 decommissioned, E19 unknown
//!   device, E4 moved device, lane L1/L2 for the payment mode) and `admin status`.
//!
//! `DCC_CRASH_ROUNDS` (default 3) sets the rounds per test; `DCC_CRASH_SEED` replays a run's
//! random choices (each test prints its seed); `DCC_CRASH_SERVER_ARGS` adds `serve` flags
//! (`--in-memory` must make it fail: a check of the check). `scripts/crash-rounds.sh` runs it
//! in a loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dcc_router::client::{admin_call, AdminClient};
use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::ingress::wire::WireAnswer;
use dcc_router::server::admin_proto::{
    AdminAnswer, AdminCall, AdminRequest, DevStatus, DeviceRow, Mode, Right, StatusReport,
};
use dcc_router::server::bootstrap::demo_device;
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::{CommandVariant, Eui64, ExecutionKind, RequestId, UserRole};

/// Demo devices the server registers on first start (flag `--demo-devices`).
const DEMO_DEVICES: u64 = 200;
/// Load: every `TICK`, `BATCH` top-ups per Supplier (≈ 2 × 500 requests/s).
const TICK: Duration = Duration::from_millis(10);
const BATCH: usize = 5;
/// Load devices: supplier-a's are the even demo devices 0..LOAD_DEVICES, supplier-b's the odd.
const LOAD_DEVICES: u64 = 60;
/// When the stop comes, after the round's load starts (ms, uniform).
const STOP_AFTER_MS: (u64, u64) = (700, 2200);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
const TERM_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests in flight while resending everything.
const RESEND_WINDOW: usize = 256;

const A: usize = 0;
const B: usize = 1;
const NETOP: usize = 2;
const NAMES: [&str; 3] = ["supplier-a", "supplier-b", "netop"];

// ---------------------------------------------------------------------------------------------
// The server process.

/// `dcc-router serve` as a child process; killed on drop, whatever the path out of the test.
struct ServerProcess {
    child: Option<Child>,
    log: PathBuf,
    life: usize,
    /// Its stdout: the lines still to read, and those read.
    stdout: Mutex<(std::sync::mpsc::Receiver<String>, Vec<String>)>,
}

impl ServerProcess {
    /// Starts the binary and waits (bounded) for its "listening" line.
    fn start(data_dir: &Path, logs: &Path, addr: SocketAddr, life: usize) -> Result<Self, String> {
        let log = logs.join(format!("server-life{life}.log"));
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcc-router"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &addr.to_string(), "--metrics", "", "--duis", ""])
            .args(["--demo-devices", &DEMO_DEVICES.to_string()])
            .args(extra_server_args())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn dcc-router: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stdout to its end (so that the server never blocks on a full pipe).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (tx_unused, rx_unused) = std::sync::mpsc::channel();
        drop(tx_unused);
        let mut proc = ServerProcess {
            child: Some(child),
            log,
            life,
            stdout: Mutex::new((rx_unused, Vec::new())),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let ready = line.contains("listening on quic://");
                    if ready && !line.contains(&format!("quic://{addr} ")) {
                        return Err(format!("server listens elsewhere than {addr}: {line}"));
                    }
                    seen.push(line);
                    if ready {
                        proc.stdout = Mutex::new((rx, seen));
                        return Ok(proc);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = proc.try_wait() {
                        return Err(proc.early_exit(status, &seen));
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "server (life {life}) not ready after {READY_TIMEOUT:?}; stdout {seen:?}\n{}",
                            proc.log_tail()
                        ));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_secs(5) {
                        if let Some(status) = proc.try_wait() {
                            return Err(proc.early_exit(status, &seen));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return Err(format!(
                        "server (life {life}) closed stdout before ready; stdout {seen:?}\n{}",
                        proc.log_tail()
                    ));
                }
            }
        }
    }

    fn early_exit(&self, status: ExitStatus, seen: &[String]) -> String {
        format!(
            "server (life {}) exited {status} before ready; stdout {seen:?}\n{}",
            self.life,
            self.log_tail()
        )
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (as `kill -TERM PID`), then waits (bounded) for the exit.
    fn terminate(&mut self) -> Result<ExitStatus, String> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid}: {sent}"));
        }
        let t = Instant::now();
        while t.elapsed() < TERM_TIMEOUT {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "server (life {}) still running {TERM_TIMEOUT:?} after SIGTERM\n{}",
            self.life,
            self.log_tail()
        ))
    }

    /// What the server printed on stdout so far (its start-up banner).
    fn stdout_lines(&self) -> Vec<String> {
        let mut g = self.stdout.lock().unwrap();
        let (rx, seen) = &mut *g;
        seen.extend(rx.try_iter());
        seen.clone()
    }

    /// The start-up line that counts the state restored.
    fn state_line(&self) -> String {
        self.stdout_lines()
            .into_iter()
            .find(|l| l.trim_start().starts_with("state "))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default()
    }

    /// The server's stdout and the end of its stderr (tracing log).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "--- server life {} stdout ---\n{}\n--- {} (last {} lines) ---\n{}",
            self.life,
            self.stdout_lines().join("\n"),
            self.log.display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `DCC_CRASH_SERVER_ARGS`: more `serve` flags, split on spaces — e.g. `--in-memory`, with
/// which the test must fail (it is how the test's own detection was checked).
fn extra_server_args() -> Vec<String> {
    std::env::var("DCC_CRASH_SERVER_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    s.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------------
// Random choices, repeatable from a printed seed.

struct Rng(u64);

impl Rng {
    fn from_env() -> (Rng, u64) {
        let seed = std::env::var("DCC_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        (Rng(seed | 1), seed)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Every envelope sent, and what it was answered.

#[derive(Debug)]
struct Entry {
    who: usize,
    what: String,
    bytes: Vec<u8>,
    /// Times answered I0/I99.
    accepted: u32,
    /// `L<life>:<code>` per send (`none` when no answer came, `err` for a transport error).
    history: Vec<String>,
}

type Ledger = Arc<Mutex<Vec<Entry>>>;

fn is_accepted(code: &str) -> bool {
    matches!(code, "I0" | "I99")
}

/// Answers that say nothing about the request itself: send again.
fn is_transient(r: &Result<WireAnswer, String>) -> bool {
    match r {
        Ok(a) => matches!(a.code.as_str(), "R10" | "R11" | "R12"),
        Err(_) => true,
    }
}

fn describe(r: &Result<WireAnswer, String>) -> String {
    match r {
        Ok(a) if a.detail.is_empty() => a.code.clone(),
        Ok(a) => format!("{}({})", a.code, a.detail),
        Err(e) => format!("err({e})"),
    }
}

/// Records an answer; returns whether it accepted.
fn record(ledger: &Ledger, idx: usize, life: usize, r: &Result<WireAnswer, String>) -> bool {
    let mut l = ledger.lock().unwrap();
    let e = &mut l[idx];
    let accepted = matches!(r, Ok(a) if is_accepted(&a.code));
    if accepted {
        e.accepted += 1;
    }
    let code = match r {
        Ok(a) => a.code.clone(),
        Err(_) => "err".into(),
    };
    e.history.push(format!("L{life}:{code}"));
    accepted
}

async fn send(client: &Client, bytes: Vec<u8>) -> Result<WireAnswer, String> {
    match tokio::time::timeout(SEND_TIMEOUT, client.send(bytes)).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer in {SEND_TIMEOUT:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The test's view of the users.

struct Ctx {
    pki: DemoPki,
    addr: SocketAddr,
    ledger: Ledger,
    /// Next counter per user (A, B, NETOP): increasing for the whole test.
    counters: [AtomicU64; 3],
}

impl Ctx {
    fn tls(&self, name: &str) -> TlsMaterial {
        TlsMaterial::client_of_demo(&self.pki, name).unwrap()
    }

    fn eui(&self, who: usize) -> Eui64 {
        self.pki.user(NAMES[who]).unwrap().eui64
    }

    /// Signs a fresh envelope (next counter of `who`) and enters it in the ledger.
    fn envelope(&self, who: usize, srv: &str, cv: u8, target: Eui64) -> (usize, Vec<u8>) {
        let user = self.pki.user(NAMES[who]).unwrap();
        let counter = self.counters[who].fetch_add(1, Ordering::Relaxed);
        let role = if who == NETOP {
            UserRole::ElectricityDistributor
        } else {
            UserRole::ImportSupplier
        };
        let h = Header {
            role,
            command_variant: CommandVariant::new(cv).unwrap(),
            execution: ExecutionKind::OnDemand,
            srv: srv.parse().unwrap(),
            request_id: RequestId {
                originator: user.eui64,
                target,
                counter,
            },
            execute_at: 0,
            signer: user.cert.id,
        };
        let bytes = user
            .signer
            .sign_envelope(&h, &counter.to_be_bytes())
            .unwrap();
        let mut l = self.ledger.lock().unwrap();
        l.push(Entry {
            who,
            what: format!("{} {srv} cv{cv} -> {target} #{counter}", NAMES[who]),
            bytes: bytes.clone(),
            accepted: 0,
            history: Vec::new(),
        });
        (l.len() - 1, bytes)
    }

    async fn connect(&self, who: usize) -> Result<Arc<Client>, String> {
        Client::connect(
            self.addr,
            "localhost",
            &self.tls(NAMES[who]),
            StreamMode::default(),
        )
        .await
        .map(Arc::new)
        .map_err(|e| format!("connect as {}: {e}", NAMES[who]))
    }

    async fn admin(&self, req: &AdminRequest) -> Result<AdminAnswer, String> {
        match tokio::time::timeout(
            ADMIN_TIMEOUT,
            admin_call(self.addr, "localhost", &self.tls("admin"), req),
        )
        .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no admin answer in {ADMIN_TIMEOUT:?}")),
        }
    }

    async fn status(&self) -> Result<StatusReport, String> {
        let a = self.admin(&AdminRequest::Status).await?;
        let message = a.message.clone();
        a.status
            .ok_or_else(|| format!("status answer without a report: {message}"))
    }

    fn accepted_total(&self) -> usize {
        self.ledger
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.accepted > 0)
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Load.

/// A send in flight: its ledger index and task.
type InFlight = (usize, tokio::task::JoinHandle<()>);

struct Load {
    stop: Arc<AtomicBool>,
    producers: Vec<tokio::task::JoinHandle<Vec<InFlight>>>,
}

/// Top-ups (SRV 2.2, on demand) from supplier-a and supplier-b to their own load devices.
fn start_load(ctx: &Arc<Ctx>, clients: &[Arc<Client>; 2], life: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for who in [A, B] {
        let (ctx, client, stop) = (ctx.clone(), clients[who].clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut sends = Vec::new();
            let mut tick = tokio::time::interval(TICK);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..BATCH {
                    let device = demo_device(2 * (i % (LOAD_DEVICES / 2)) + who as u64);
                    i += 1;
                    let (idx, bytes) = ctx.envelope(who, "2.2", 1, device);
                    let (c, l) = (client.clone(), ctx.ledger.clone());
                    sends.push((
                        idx,
                        tokio::spawn(async move {
                            let r = send(&c, bytes).await;
                            record(&l, idx, life, &r);
                        }),
                    ));
                }
            }
            sends
        }));
    }
    Load { stop, producers }
}

/// Stops the producers, lets the sends in flight finish for `grace`, then abandons the rest
/// (recorded `none`). Returns (sent, unanswered).
async fn stop_load(ctx: &Ctx, load: Load, life: usize, grace: Duration) -> (usize, usize) {
    load.stop.store(true, Ordering::Relaxed);
    let mut sends = Vec::new();
    for p in load.producers {
        sends.extend(p.await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + grace;
    let sent = sends.len();
    let mut unanswered = 0;
    for (idx, h) in sends {
        if !h.is_finished() {
            let _ = tokio::time::timeout_at(deadline, async {
                while !h.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        if !h.is_finished() {
            h.abort();
            unanswered += 1;
            ctx.ledger.lock().unwrap()[idx]
                .history
                .push(format!("L{life}:none"));
        }
    }
    (sent, unanswered)
}

// ---------------------------------------------------------------------------------------------
// Admin changes and what they must leave in force.

/// One piece of state an admin change sets; each is a yes/no a probe can read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// supplier-b's Organisation Certificate is revoked.
    RevokedB,
    /// supplier-a's enrolment right is suspended.
    EnrolmentSuspendedA,
    /// netop's core right (other roles) is suspended.
    NetopCoreSuspended,
    /// Demo device i is in prepayment mode.
    Prepayment(u64),
    /// Device i is decommissioned.
    Decommissioned(u64),
    /// Device i exists (registered to supplier-a).
    Exists(u64),
    /// Device i's registration moved to supplier-b.
    MovedToB(u64),
}

impl Key {
    fn initial(self) -> bool {
        match self {
            Key::Prepayment(i) => i % 100 < 30,
            Key::Exists(i) => i < DEMO_DEVICES,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Change {
    key: Key,
    value: bool,
    req: AdminRequest,
    at: Duration,
}

#[derive(Clone, Debug)]
enum Outcome {
    NotIssued,
    /// The admin connection never came up (a draining or dead server): nothing was sent.
    NoConnection(String),
    /// Sent; no answer (the stop came first).
    Unknown(String),
    Ok,
    Refused(String),
}

/// The admin changes of round `r`, at random moments up to a little after the stop (so that
/// some are in flight when it comes).
fn plan(
    ctx: &Ctx,
    model: &Model,
    r: usize,
    rounds: usize,
    stop_ms: u64,
    rng: &mut Rng,
) -> Vec<Change> {
    let r64 = r as u64;
    let (a, b, netop) = (ctx.eui(A), ctx.eui(B), ctx.eui(NETOP));
    let pay = 130;
    let decommission = 150 + 2 * (r64 % 25);
    let new_device = 10_000 + r64;
    let moved = 100 + 2 * (r64 % 14);
    let even = r.is_multiple_of(2);
    let suspend_netop = even;
    let netop_rights = vec![Right::CoreOtherRoles];
    let mut changes = vec![
        (
            Key::Prepayment(pay),
            even,
            AdminRequest::SetPaymentMode {
                device: demo_device(pay),
                mode: if even { Mode::Prepayment } else { Mode::Credit },
            },
        ),
        (
            Key::Decommissioned(decommission),
            true,
            // What `dcc-router admin decommission` sends.
            AdminRequest::SetDeviceStatus {
                device: demo_device(decommission),
                status: DevStatus::Decommissioned,
            },
        ),
        (
            Key::Exists(new_device),
            true,
            AdminRequest::SetDevice {
                row: DeviceRow {
                    supplier: Some(a),
                    network_operator: Some(netop),
                    payment_mode: Some(Mode::Credit),
                    status: Some(DevStatus::Commissioned),
                    ..DeviceRow::new(demo_device(new_device))
                },
            },
        ),
        (
            Key::MovedToB(moved),
            true,
            AdminRequest::ChangeSupplier {
                device: demo_device(moved),
                supplier: b,
                export: false,
                pending: false,
            },
        ),
        (
            Key::NetopCoreSuspended,
            suspend_netop,
            if suspend_netop {
                AdminRequest::Suspend {
                    user: netop,
                    rights: netop_rights,
                }
            } else {
                AdminRequest::Restore {
                    user: netop,
                    rights: netop_rights,
                }
            },
        ),
    ];
    // One-way changes: planned until a probe has found them in force.
    if !model.is(Key::EnrolmentSuspendedA) {
        changes.push((
            Key::EnrolmentSuspendedA,
            true,
            AdminRequest::Suspend {
                user: a,
                rights: vec![Right::Enrolment],
            },
        ));
    }
    if r >= 1.min(rounds - 1) && !model.is(Key::RevokedB) {
        changes.push((
            Key::RevokedB,
            true,
            AdminRequest::Revoke {
                cert: ctx.pki.user(NAMES[B]).unwrap().cert.id,
            },
        ));
    }
    changes
        .into_iter()
        .map(|(key, value, req)| Change {
            key,
            value,
            req,
            at: Duration::from_millis(rng.range(20, stop_ms + 150)),
        })
        .collect()
}

type AdminResults = Arc<Mutex<Vec<Outcome>>>;

/// Each change at its moment, concurrently with the load (and with one another).
fn start_admin(
    ctx: &Arc<Ctx>,
    changes: &[Change],
    stop: &Arc<AtomicBool>,
) -> (AdminResults, Vec<tokio::task::JoinHandle<()>>) {
    let results: AdminResults = Arc::new(Mutex::new(vec![Outcome::NotIssued; changes.len()]));
    let mut tasks = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let (ctx, results, stop, c) = (ctx.clone(), results.clone(), stop.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(c.at).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let set = |o| results.lock().unwrap()[i] = o;
            // Nothing is sent before the handshake completes: a change whose connection never
            // came up was not applied (and must not be in force).
            set(Outcome::NoConnection(
                "handshake unfinished at the stop".into(),
            ));
            let conn = match tokio::time::timeout(
                ADMIN_TIMEOUT,
                AdminClient::connect(ctx.addr, "localhost", &ctx.tls("admin")),
            )
            .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return set(Outcome::NoConnection(e.to_string())),
                Err(_) => return set(Outcome::NoConnection("handshake timed out".into())),
            };
            set(Outcome::Unknown("sent; no answer before the stop".into()));
            let call = AdminCall {
                request: c.req.clone(),
                reason: Some(format!("crash test, change {i} of the round")),
            };
            let outcome = match tokio::time::timeout(ADMIN_TIMEOUT, conn.call(&call)).await {
                Ok(Ok(a)) if a.ok => Outcome::Ok,
                Ok(Ok(a)) => Outcome::Refused(format!("{} ({:?})", a.message, a.code)),
                Ok(Err(e)) => Outcome::Unknown(e.to_string()),
                Err(_) => Outcome::Unknown(format!("no answer in {ADMIN_TIMEOUT:?}")),
            };
            set(outcome);
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
        }));
    }
    (results, tasks)
}

/// What the test knows of each key: the value last confirmed, and values set by changes whose
/// answer never came (either may be in force).
#[derive(Default)]
struct Model {
    keys: BTreeMap<Key, (bool, Vec<bool>)>,
}

impl Model {
    /// Whether `key` was found set by a probe (or set by a change answered ok since).
    fn is(&self, key: Key) -> bool {
        self.keys.get(&key).is_some_and(|(v, _)| *v)
    }

    fn apply(&mut self, c: &Change, o: &Outcome) {
        let entry = self
            .keys
            .entry(c.key)
            .or_insert_with(|| (c.key.initial(), Vec::new()));
        match o {
            Outcome::Ok => *entry = (c.value, Vec::new()),
            Outcome::Unknown(_) => entry.1.push(c.value),
            Outcome::NotIssued | Outcome::NoConnection(_) | Outcome::Refused(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Probes: fresh envelopes whose answers read a key back.

struct Conns {
    clients: [Arc<Client>; 3],
}

impl Conns {
    async fn open(ctx: &Ctx) -> Result<Conns, String> {
        Ok(Conns {
            clients: [
                ctx.connect(A).await?,
                ctx.connect(B).await?,
                ctx.connect(NETOP).await?,
            ],
        })
    }
}

/// Sends a fresh envelope (again, with a new counter, while the answer is transient).
async fn fresh(
    ctx: &Ctx,
    conns: &Conns,
    life: usize,
    who: usize,
    srv: &str,
    cv: u8,
    target: Eui64,
) -> Result<WireAnswer, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let (idx, bytes) = ctx.envelope(who, srv, cv, target);
        let r = send(&conns.clients[who], bytes).await;
        record(&ctx.ledger, idx, life, &r);
        if !is_transient(&r) {
            return r;
        }
        last = describe(&r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{NAMES:?}[{who}] {srv} -> {target}: still {last} after 5 tries"
    ))
}

/// Reads a key back from the running server.
async fn probe(ctx: &Ctx, conns: &Conns, life: usize, key: Key) -> Result<bool, String> {
    let code = |r: &WireAnswer, yes: &str, no: &str| -> Result<bool, String> {
        match r.code.as_str() {
            c if c == yes => Ok(true),
            c if c == no => Ok(false),
            _ => Err(format!(
                "{key:?}: answered {} {}, expected {yes} or {no}",
                r.code, r.detail
            )),
        }
    };
    match key {
        Key::RevokedB => {
            let r = fresh(ctx, conns, life, B, "2.2", 1, demo_device(1)).await?;
            code(&r, "R3", "I0")
        }
        Key::EnrolmentSuspendedA => {
            let r = fresh(ctx, conns, life, A, "8.4", 8, Eui64::from_u64(0)).await?;
            code(&r, "R8", "I0")
        }
        Key::NetopCoreSuspended => {
            let r = fresh(ctx, conns, life, NETOP, "4.1.1", 1, demo_device(0)).await?;
            code(&r, "R8", "I0")
        }
        Key::Prepayment(i) => {
            // 4.4.4 (a debt read, L3) is in the policy's prepayment_priority list: promoted
            // to L1 only for a prepayment device (a tariff is not promoted since issue 13).
            let r = fresh(ctx, conns, life, A, "4.4.4", 1, demo_device(i)).await?;
            match (r.code.as_str(), r.lane) {
                ("I0", Some(1)) => Ok(true),
                ("I0", Some(3)) => Ok(false),
                _ => Err(format!("{key:?}: answered {r:?}, expected I0 in L1 or L3")),
            }
        }
        Key::Decommissioned(i) => {
            let r = fresh(ctx, conns, life, A, "2.2", 1, demo_device(i)).await?;
            code(&r, "E5", "I0")
        }
        Key::Exists(i) => {
            let r = fresh(ctx, conns, life, A, "2.2", 1, demo_device(i)).await?;
            code(&r, "I0", "E19")
        }
        Key::MovedToB(i) => {
            let r = fresh(ctx, conns, life, A, "2.2", 1, demo_device(i)).await?;
            code(&r, "E4", "I0")
        }
    }
}

/// Probes every key changed so far; returns (key, observed) and the violations. The model
/// learns what is in force now (it is on disk: it survived the restart).
async fn check_model(
    ctx: &Ctx,
    conns: &Conns,
    life: usize,
    model: &mut Model,
) -> (BTreeMap<Key, bool>, Vec<String>) {
    let mut seen = BTreeMap::new();
    let mut bad = Vec::new();
    for (&key, (confirmed, pending)) in model.keys.iter_mut() {
        match probe(ctx, conns, life, key).await {
            Err(e) => bad.push(e),
            Ok(v) => {
                if v != *confirmed && !pending.contains(&v) {
                    bad.push(format!(
                        "{key:?} is {v} after the restart; the last change answered ok set {confirmed} (unanswered since: {pending:?})"
                    ));
                }
                *confirmed = v;
                pending.clear();
                seen.insert(key, v);
            }
        }
    }
    match ctx.status().await {
        Err(e) => bad.push(format!("admin status: {e}")),
        Ok(s) => {
            let added = seen
                .iter()
                .filter(|(k, v)| matches!(k, Key::Exists(i) if *i >= DEMO_DEVICES) && **v)
                .count();
            if s.devices != DEMO_DEVICES as usize + added {
                bad.push(format!(
                    "status reports {} devices, probes found {} demo + {added} added: {}",
                    s.devices,
                    DEMO_DEVICES,
                    serde_json::to_string(&s).unwrap_or_default()
                ));
            }
            let b_id = ctx.pki.user(NAMES[B]).unwrap().cert.id.to_string();
            let b_status = s
                .certificates
                .iter()
                .find(|(id, _, _)| *id == b_id)
                .map(|(_, _, st)| st.clone());
            let revoked = seen.get(&Key::RevokedB).copied().unwrap_or(false);
            match b_status {
                None => bad.push(format!("status lists no certificate {b_id} (supplier-b)")),
                Some(st) if st.starts_with("revoked") != revoked => bad.push(format!(
                    "status says supplier-b's certificate is {st:?}, the probe found revoked = {revoked}"
                )),
                Some(_) => {}
            }
        }
    }
    (seen, bad)
}

// ---------------------------------------------------------------------------------------------
// Resending everything.

#[derive(Default)]
struct Resent {
    resent: usize,
    /// Envelopes accepted before, refused now: code → count.
    refused: BTreeMap<String, usize>,
    replays: Vec<String>,
    /// Accepted before, answered with a code no admin change explains, or no final answer.
    odd: Vec<String>,
    newly_accepted: usize,
}

async fn resend_all(ctx: &Arc<Ctx>, conns: &Conns, life: usize) -> Resent {
    let snapshot: Vec<(usize, usize, Vec<u8>, bool)> = ctx
        .ledger
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, e)| (i, e.who, e.bytes.clone(), e.accepted > 0))
        .collect();
    let window = Arc::new(tokio::sync::Semaphore::new(RESEND_WINDOW));
    let mut tasks = Vec::with_capacity(snapshot.len());
    for (idx, who, bytes, was_accepted) in snapshot {
        let permit = window.clone().acquire_owned().await.unwrap();
        let (client, ledger) = (conns.clients[who].clone(), ctx.ledger.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut r = Err(String::new());
            for attempt in 0..4 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r = send(&client, bytes.clone()).await;
                record(&ledger, idx, life, &r);
                if !is_transient(&r) {
                    break;
                }
            }
            (idx, was_accepted, r)
        }));
    }
    let mut out = Resent::default();
    for t in tasks {
        let (idx, was_accepted, r) = t.await.unwrap();
        out.resent += 1;
        let accepted = matches!(&r, Ok(a) if is_accepted(&a.code));
        let context = || {
            let l = ctx.ledger.lock().unwrap();
            format!(
                "{} [{}] now {}",
                l[idx].what,
                l[idx].history.join(" "),
                describe(&r)
            )
        };
        match (was_accepted, accepted) {
            (true, true) => out.replays.push(context()),
            (false, true) => out.newly_accepted += 1,
            (true, false) => {
                let code = r.as_ref().map_or("err".to_owned(), |a| a.code.clone());
                if !matches!(code.as_str(), "R7" | "R3" | "R8" | "E4" | "E5") {
                    out.odd.push(context());
                }
                *out.refused.entry(code).or_default() += 1;
            }
            (false, false) => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The rounds.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Kill,
    Term,
}

fn rounds_from_env() -> usize {
    std::env::var("DCC_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

fn fail(server: &ServerProcess, seed: u64, what: &str, items: &[String]) -> ! {
    let shown: Vec<&String> = items.iter().take(20).collect();
    panic!(
        "{what}: {} (seed {seed}; rerun with DCC_CRASH_SEED={seed})\n  {}\n{}",
        items.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        server.log_tail()
    );
}

async fn crash_rounds(how: Stop) {
    let rounds = rounds_from_env();
    let (mut rng, seed) = Rng::from_env();
    let tag = format!("{how:?}").to_lowercase();
    println!("[{tag}] {rounds} rounds, seed {seed} (DCC_CRASH_SEED={seed} replays the choices)");
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let mut server =
        ServerProcess::start(&data, tmp.path(), addr, 0).unwrap_or_else(|e| panic!("{e}"));
    let ctx = Arc::new(Ctx {
        pki: DemoPki::load_from_dir(&data.join("pki")).unwrap(),
        addr,
        ledger: Arc::default(),
        counters: [AtomicU64::new(1), AtomicU64::new(1), AtomicU64::new(1)],
    });
    let mut model = Model::default();
    let mut total_resent = 0;
    for round in 0..rounds {
        let life = round;
        let stop_ms = rng.range(STOP_AFTER_MS.0, STOP_AFTER_MS.1);
        let changes = plan(&ctx, &model, round, rounds, stop_ms, &mut rng);
        let sent_before = ctx.ledger.lock().unwrap().len();
        let accepted_before = ctx.accepted_total();
        let clients = [
            ctx.connect(A).await.unwrap_or_else(|e| panic!("{e}")),
            ctx.connect(B).await.unwrap_or_else(|e| panic!("{e}")),
        ];
        let load = start_load(&ctx, &clients, life);
        let admin_stop = load.stop.clone();
        let (admin_results, admin_tasks) = start_admin(&ctx, &changes, &admin_stop);
        tokio::time::sleep(Duration::from_millis(stop_ms)).await;

        // The stop, with load and admin changes in flight.
        let stopping = Instant::now();
        let grace = match how {
            Stop::Kill => {
                tokio::task::block_in_place(|| server.kill());
                Duration::from_millis(500)
            }
            Stop::Term => {
                let status = tokio::task::block_in_place(|| server.terminate())
                    .unwrap_or_else(|e| panic!("[{tag}] round {round}: {e}"));
                assert!(
                    status.success(),
                    "[{tag}] round {round}: SIGTERM exit {status} (seed {seed})\n{}",
                    server.log_tail()
                );
                Duration::from_secs(2)
            }
        };
        let stop_took = stopping.elapsed();
        let (load_sent, unanswered) = stop_load(&ctx, load, life, grace).await;
        admin_stop.store(true, Ordering::Relaxed);
        for t in admin_tasks {
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                while !t.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            t.abort();
        }
        drop(clients);
        let outcomes = admin_results.lock().unwrap().clone();
        let refused: Vec<String> = changes
            .iter()
            .zip(&outcomes)
            .filter_map(|(c, o)| match o {
                Outcome::Refused(m) => Some(format!("{:?}: {m}", c.req)),
                _ => None,
            })
            .collect();
        if !refused.is_empty() {
            fail(
                &server,
                seed,
                "admin changes refused while the server was up",
                &refused,
            );
        }
        for (c, o) in changes.iter().zip(&outcomes) {
            model.apply(c, o);
        }
        let accepted_at_stop = ctx.accepted_total();

        // Restart on the same data dir and port.
        let t = Instant::now();
        server =
            tokio::task::block_in_place(|| ServerProcess::start(&data, tmp.path(), addr, life + 1))
                .unwrap_or_else(|e| panic!("[{tag}] round {round}: restart: {e} (seed {seed})"));
        let restart = t.elapsed();
        let conns = Conns::open(&ctx).await.unwrap_or_else(|e| panic!("{e}"));
        let resent = resend_all(&ctx, &conns, life + 1).await;
        total_resent += resent.resent;
        if !resent.replays.is_empty() {
            fail(
                &server,
                seed,
                "REPLAYS ACCEPTED after the restart",
                &resent.replays,
            );
        }
        if !resent.odd.is_empty() {
            fail(
                &server,
                seed,
                "envelopes accepted before the stop answered neither a refusal nor a replay",
                &resent.odd,
            );
        }
        let (seen, bad) = check_model(&ctx, &conns, life + 1, &mut model).await;
        if !bad.is_empty() {
            fail(
                &server,
                seed,
                "admin changes not in force after the restart",
                &bad,
            );
        }
        let ok: Vec<&Change> = changes
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, Outcome::Ok))
            .map(|(c, _)| c)
            .collect();
        let in_force = ok
            .iter()
            .filter(|c| seen.get(&c.key) == Some(&c.value))
            .count();
        let unknown: Vec<String> = changes
            .iter()
            .zip(&outcomes)
            .filter_map(|(c, o)| match o {
                Outcome::Unknown(why) => Some((c, why)),
                _ => None,
            })
            .map(|(c, why)| {
                format!(
                    "{:?}={} ({why}): {}",
                    c.key,
                    c.value,
                    if seen.get(&c.key) == Some(&c.value) {
                        "in force"
                    } else {
                        "lost"
                    }
                )
            })
            .collect();
        let not_issued = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::NotIssued))
            .count();
        let no_connection: Vec<String> = changes
            .iter()
            .zip(&outcomes)
            .filter_map(|(c, o)| match o {
                Outcome::NoConnection(why) => Some(format!("{:?} ({why})", c.key)),
                _ => None,
            })
            .collect();
        drop(conns);
        println!(
            "[{tag}] round {}/{rounds}: stop ({how:?}) at {stop_ms} ms (exited in {} ms); sent {load_sent} \
             (ledger {} -> {}), accepted before stop {} (total {accepted_at_stop}), unanswered {unanswered}; \
             restart {} ms; resent {}: replays accepted {}, refused {:?}, newly accepted {}; \
             admin changes ok {}, in force {in_force}/{}, unknown {unknown:?}, not issued {not_issued}, \
             no connection (not applied) {no_connection:?}; \
             restarted with {}",
            round + 1,
            stop_took.as_millis(),
            sent_before,
            ctx.ledger.lock().unwrap().len(),
            accepted_at_stop - accepted_before,
            restart.as_millis(),
            resent.resent,
            resent.replays.len(),
            resent.refused,
            resent.newly_accepted,
            ok.len(),
            ok.len(),
            server.state_line(),
        );
        assert_eq!(
            in_force,
            ok.len(),
            "[{tag}] round {round}: admin changes answered ok but not in force (seed {seed})"
        );
    }
    // A clean stop at the end: SIGTERM, exit 0.
    let status = tokio::task::block_in_place(|| server.terminate())
        .unwrap_or_else(|e| panic!("[{tag}] final stop: {e}"));
    assert!(
        status.success(),
        "[{tag}] final SIGTERM: exit {status}\n{}",
        server.log_tail()
    );
    println!(
        "[{tag}] done: {rounds} rounds, {} envelopes, resent {total_resent}, replays accepted 0, {:.1} s",
        ctx.ledger.lock().unwrap().len(),
        started.elapsed().as_secs_f64()
    );
    println!("CRASH-SUMMARY rounds={rounds} resent={total_resent} replays=0");
}

fn overall_limit(rounds: usize) -> Duration {
    Duration::from_secs(60 + 30 * rounds as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_and_replays_nothing() {
    let limit = overall_limit(rounds_from_env());
    tokio::time::timeout(limit, crash_rounds(Stop::Kill))
        .await
        .unwrap_or_else(|_| panic!("crash rounds (SIGKILL) took over {limit:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_restart_preserves_everything() {
    let limit = overall_limit(rounds_from_env());
    tokio::time::timeout(limit, crash_rounds(Stop::Term))
        .await
        .unwrap_or_else(|_| panic!("crash rounds (SIGTERM) took over {limit:?}"));
}
