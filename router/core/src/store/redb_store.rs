//! The durable engine: one [redb](https://www.redb.org) file, `state.redb`.
//!
//! Why redb (the trial, side by side with fjall, is `benches/store-engines/`):
//! * **One file, one fsync per commit.** redb commits a copy-on-write B-tree with a single
//!   `fsync` (checksummed commit slot), so a group commit of many anti-replay marks costs one
//!   sync, and there is exactly one file to name in every error, back up or inspect.
//! * **Crash safety and integrity checking are built in**: an unclean shutdown is detected
//!   and recovered at open; [`redb::Database::check_integrity`] verifies every page checksum,
//!   which [`RedbStore::open`] runs so that a damaged file stops the server instead of
//!   starting it with partial state.
//! * **No dependencies** of its own (fjall brings an LSM tree, compaction threads and a
//!   journal directory): this workload is small writes, rare admin changes and one full read
//!   at start, which a B-tree serves well.
//!
//! Tables (keys big-endian so that iteration is in id order):
//!
//! | table | key | value |
//! |---|---|---|
//! | `certs` | certificate id (text) | [`StoredCert`] JSON |
//! | `parties` | EUI-64, 8 bytes | [`StoredParty`] JSON |
//! | `devices` | EUI-64, 8 bytes | [`encode_device`], 36 bytes (27: version 1, still read) |
//! | `crls` | SHA-256 of the PEM, hex | PEM |
//! | `replay` | originator EUI-64, 8 bytes | high-water mark, u64 |
//! | `audit` | sequence, u64 | [`AuditEntry`] JSON |
//! | `meta` | name | value |
//!
//! After an I/O error redb refuses further writes until the database is reopened; this store
//! reopens it on the next write, so the server recovers by itself once writing works again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use dcc_signing::Eui64;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    decode_device, encode_device, AuditEntry, AuditFilter, Change, Snapshot, Store, StoreError,
    StoredCert, StoredParty,
};
use crate::state::Device;

const CERTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("certs");
const PARTIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("parties");
const DEVICES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("devices");
const CRLS: TableDefinition<'_, &str, &str> = TableDefinition::new("crls");
const REPLAY: TableDefinition<'_, u64, u64> = TableDefinition::new("replay");
const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");

/// The file name under the data directory.
pub const FILE_NAME: &str = "state.redb";

/// Opens the database (again, after an I/O error). Production opens the file; a test can
/// open it over a storage backend that fails on demand.
pub type Opener = Arc<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// A store in one redb file.
pub struct RedbStore {
    path: PathBuf,
    opener: Opener,
    /// `None` after a write failed with an I/O error: reopened on the next write.
    db: Mutex<Option<Database>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Converts any redb error into a message.
fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// redb's page cache (its default is 1 GiB). What the router reads back — the whole state —
/// is read once, at start; afterwards it writes small records (anti-replay marks, audit,
/// admin changes) whose pages stay hot in far less. A 1 GiB cache filled by the start-up scan
/// of 60 M devices would add 18 resident bytes per device for nothing (issue 14.4).
pub const CACHE_BYTES: usize = 64 << 20;

impl RedbStore {
    /// Opens (creating if missing) the store at `path` and checks its integrity. The
    /// directory must exist: a store is never created somewhere unexpected.
    ///
    /// The file is made readable and writable by the router's user only (mode 0600 on Unix):
    /// it holds the router's own private keys ([`crate::state::cos`], "Keys at rest").
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = path.to_path_buf();
        let store = Self::open_with(
            path,
            Arc::new(move || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create(&file)
            }),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::Open {
                    path: path.to_path_buf(),
                    message: format!("cannot restrict its permissions to 0600: {e}"),
                },
            )?;
        }
        Ok(store)
    }

    /// Opens with `opener` (called again to reopen after an I/O error); `path` names the
    /// store in errors. For custom storage backends and fault-injection tests.
    pub fn open_with(path: &Path, opener: Opener) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                return Err(open_err(format!(
                    "directory {} does not exist",
                    dir.display()
                )))
            }
            _ => {}
        }
        // redb may panic, rather than return an error, on some damaged files (an invalid page
        // type byte): a damaged store must stop the server with an error naming the file.
        let integrity = |message: String| StoreError::Integrity {
            path: path.to_path_buf(),
            message,
        };
        let mut db = guarded(|| opener())
            .map_err(integrity)?
            .map_err(|e| open_err(msg(e)))?;
        let checked = guarded(|| db.check_integrity()).map_err(integrity)?;
        match checked {
            Ok(true) => {}
            Ok(false) => {
                // redb repaired it (e.g. an interrupted commit): the last durable commit is
                // intact, which is all that was ever acknowledged.
                tracing::warn!(path = %path.display(), "state store was repaired at open");
            }
            Err(e) => {
                return Err(StoreError::Integrity {
                    path: path.to_path_buf(),
                    message: msg(e),
                })
            }
        }
        let store = RedbStore {
            path: path.to_path_buf(),
            opener,
            db: Mutex::new(Some(db)),
        };
        store.write(|txn| {
            txn.open_table(CERTS)?;
            txn.open_table(PARTIES)?;
            txn.open_table(DEVICES)?;
            txn.open_table(CRLS)?;
            txn.open_table(REPLAY)?;
            txn.open_table(AUDIT)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_err(&self, message: String) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            message,
        }
    }

    fn read_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            message: msg(e),
        }
    }

    fn record_err(&self, table: &'static str, key: String, message: String) -> StoreError {
        StoreError::Record {
            path: self.path.clone(),
            table,
            key,
            message,
        }
    }

    /// The open database, reopened first when an earlier I/O failure dropped it.
    fn open_db<'g>(&self, guard: &'g mut Option<Database>) -> Result<&'g Database, String> {
        if guard.is_none() {
            let db = guarded(|| (self.opener)())
                .map_err(|m| format!("reopening after an earlier failure: {m}"))?
                .map_err(|e| format!("reopening after an earlier failure: {e}"))?;
            *guard = Some(db);
        }
        guard.as_ref().ok_or_else(|| "not open".to_owned())
    }

    /// Runs `f` in one durable write transaction. On failure nothing of it is kept; after an
    /// I/O failure the database is dropped and reopened by the next call.
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let mut guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let db = self.open_db(&mut guard).map_err(|m| self.write_err(m))?;
        let result = guarded(|| -> Result<(), redb::Error> {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
        .unwrap_or_else(|m| Err(redb::Error::Corrupted(m)));
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Whatever failed, start from a freshly opened database next time: redb
                // refuses writes after an I/O error until reopened (`PreviousIo`).
                *guard = None;
                Err(self.write_err(msg(e)))
            }
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let db = self.open_db(&mut guard).map_err(|m| self.read_err(m))?;
        let txn = db.begin_read().map_err(|e| self.read_err(e))?;
        drop(guard);
        guarded(|| f(&txn)).unwrap_or_else(|m| {
            Err(StoreError::Integrity {
                path: self.path.clone(),
                message: m,
            })
        })
    }
}

impl Store for RedbStore {
    fn describe(&self) -> String {
        format!("durable, redb file {}", self.path.display())
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        self.read(|txn| {
            let mut snap = Snapshot::default();
            let t = txn.open_table(CERTS).map_err(|e| self.read_err(e))?;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                let c: StoredCert = serde_json::from_slice(v.value())
                    .map_err(|e| self.record_err("certs", k.value().to_owned(), msg(e)))?;
                snap.certs.push(c);
            }
            let t = txn.open_table(PARTIES).map_err(|e| self.read_err(e))?;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                let id = Eui64::from_u64(k.value());
                let p: StoredParty = serde_json::from_slice(v.value())
                    .map_err(|e| self.record_err("parties", id.to_string(), msg(e)))?;
                snap.parties.push((id, p));
            }
            let t = txn.open_table(CRLS).map_err(|e| self.read_err(e))?;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (_, v) = row.map_err(|e| self.read_err(e))?;
                snap.crls.push(v.value().to_owned());
            }
            let t = txn.open_table(REPLAY).map_err(|e| self.read_err(e))?;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                snap.replay.push((Eui64::from_u64(k.value()), v.value()));
            }
            let t = txn.open_table(META).map_err(|e| self.read_err(e))?;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                snap.meta.push((k.value().to_owned(), v.value().to_owned()));
            }
            Ok(snap)
        })
    }

    fn for_each_device(&self, f: &mut dyn FnMut(Eui64, Device)) -> Result<u64, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(DEVICES).map_err(|e| self.read_err(e))?;
            let mut n = 0u64;
            for row in t.iter().map_err(|e| self.read_err(e))? {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                let id = Eui64::from_u64(k.value());
                let d = decode_device(v.value())
                    .map_err(|m| self.record_err("devices", id.to_string(), m))?;
                f(id, d);
                n += 1;
            }
            Ok(n)
        })
    }

    fn apply(&self, changes: &[Change], audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        let encode = |v: &dyn erased::Json| v.to_json();
        self.write(|txn| {
            for c in changes {
                match c {
                    Change::Cert(cert) => {
                        let mut t = txn.open_table(CERTS)?;
                        let key = cert.id.to_string();
                        t.insert(key.as_str(), encode(cert).as_slice())?;
                    }
                    Change::Party(id, p) => {
                        let mut t = txn.open_table(PARTIES)?;
                        t.insert(id.to_u64(), encode(p).as_slice())?;
                    }
                    Change::Devices(list) => {
                        let mut t = txn.open_table(DEVICES)?;
                        for (id, d) in list {
                            t.insert(id.to_u64(), encode_device(d).as_slice())?;
                        }
                    }
                    Change::Crl { key, pem } => {
                        let mut t = txn.open_table(CRLS)?;
                        t.insert(key.as_str(), pem.as_str())?;
                    }
                    Change::Meta(k, v) => {
                        let mut t = txn.open_table(META)?;
                        t.insert(k.as_str(), v.as_str())?;
                    }
                    Change::MetaRemove(k) => {
                        let mut t = txn.open_table(META)?;
                        t.remove(k.as_str())?;
                    }
                }
            }
            if let Some(a) = audit {
                let mut t = txn.open_table(AUDIT)?;
                let seq = t.last()?.map_or(1, |(k, _)| k.value() + 1);
                let mut entry = a.clone();
                entry.seq = seq;
                t.insert(seq, encode(&entry).as_slice())?;
            }
            Ok(())
        })
    }

    fn commit_replay(&self, marks: &[(Eui64, u64)]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(REPLAY)?;
            for &(who, mark) in marks {
                let k = who.to_u64();
                let old = t.get(k)?.map(|v| v.value());
                if old.is_none_or(|o| o < mark) {
                    t.insert(k, mark)?;
                }
            }
            Ok(())
        })
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(AUDIT).map_err(|e| self.read_err(e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| self.read_err(e))?.rev() {
                let (k, v) = row.map_err(|e| self.read_err(e))?;
                let e: AuditEntry = serde_json::from_slice(v.value())
                    .map_err(|e| self.record_err("audit", k.value().to_string(), msg(e)))?;
                if filter.matches(&e) {
                    out.push(e);
                    if out.len() >= filter.limit() {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Runs `f`, turning a panic inside redb (seen on some damaged files) into an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned());
        format!("the file is damaged ({what})")
    })
}

/// JSON encoding of the stored records without generic closures.
mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            // Serialising these plain structs cannot fail (no maps with non-string keys).
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
