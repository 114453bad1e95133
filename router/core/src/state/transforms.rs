//! Outstanding transforms: the critical-command flow of DUIS.
//!
//! A critical request is sent twice (domain.md, "Interfaces a DCC stand-in exposes"): first
//! with CV 4 to the Transform service — the DCC checks it and answers with a GBCS
//! Pre-Command for the User to sign — then, **with the same RequestID**, as a Signed
//! Pre-Command (CV 5, 6 or 7) to Send Command. So:
//!
//! * a CV 4 request that passes admission and verification does not spend its counter and
//!   goes to no device: the commit stage records it here and answers I0 (the DUIS front adds
//!   the Pre-Command);
//! * a DUIS Signed Pre-Command is admitted only while a transform with its RequestID, by the
//!   same originator, is outstanding (refused E12 `no-outstanding-transform` otherwise); the
//!   commit that spends its counter also closes the transform.
//!
//! The table is bounded ([`MAX_OUTSTANDING`]; past it a transform is refused busy) and
//! entries expire after [`TRANSFORM_TTL_S`]; it is not durable — after a restart the User
//! transforms again (nothing was dispatched and no counter was spent).
//!
//! The binary envelope has no Transform service: a User of the router's own protocol signs
//! the pre-command itself, so envelopes with CV 5–7 do not need a transform.

use dashmap::DashMap;
use dcc_signing::RequestId;

/// Most transforms outstanding at once.
pub const MAX_OUTSTANDING: usize = 100_000;
/// How long a transform waits for its Signed Pre-Command (seconds).
pub const TRANSFORM_TTL_S: u64 = 3600;

/// RequestID → (originator, expiry in Unix seconds).
#[derive(Debug, Default)]
pub struct Transforms {
    open: DashMap<RequestId, u64>,
}

impl Transforms {
    /// Records a transform at `now`; `false` when the table is full (expired entries are
    /// dropped first).
    pub fn open(&self, id: RequestId, now: u64) -> bool {
        if self.open.len() >= MAX_OUTSTANDING {
            self.open.retain(|_, expires| *expires > now);
            if self.open.len() >= MAX_OUTSTANDING {
                return false;
            }
        }
        self.open.insert(id, now + TRANSFORM_TTL_S);
        true
    }

    /// Whether a transform with this RequestID (which names its originator) is outstanding.
    pub fn is_open(&self, id: &RequestId, now: u64) -> bool {
        self.open.get(id).is_some_and(|e| *e > now)
    }

    /// Closes the transform of a Signed Pre-Command that was accepted.
    pub fn close(&self, id: &RequestId) {
        self.open.remove(id);
    }

    /// Transforms outstanding (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is outstanding.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcc_signing::Eui64;

    #[test]
    fn transforms_open_expire_and_close() {
        let t = Transforms::default();
        let id = RequestId {
            originator: Eui64::from_u64(1),
            target: Eui64::from_u64(2),
            counter: 7,
        };
        assert!(!t.is_open(&id, 100));
        assert!(t.open(id, 100));
        assert!(t.is_open(&id, 100 + TRANSFORM_TTL_S - 1));
        assert!(!t.is_open(&id, 100 + TRANSFORM_TTL_S));
        t.close(&id);
        assert!(!t.is_open(&id, 100));
    }
}
