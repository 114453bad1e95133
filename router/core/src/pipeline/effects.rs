//! After the hand-off: the state changes a dispatched request makes, applied outside the
//! signer certificate's lock through [`AdminHandle`](crate::AdminHandle) — durable and
//! audited like any admin change (who: `pipeline <Request ID>`).
//!
//! Why outside the lock: an admin change takes the admin lock, and a revocation holds the
//! admin lock while it waits for the certificate's write lock; a worker holding the read lock
//! and waiting for the admin lock would deadlock with it.
//!
//! | SRV | effect |
//! |---|---|
//! | 6.15.1 Update Security Credentials (KRP), by a Supplier | the device's GNO slot takes its registered GNO's certificate, or the ACB's (MP128B; [`AdminHandle::place_gno_certificate`](crate::AdminHandle::place_gno_certificate)) |

use dcc_signing::envelope::Header;
use dcc_signing::{Eui64, RequestId, Srv};

use super::Shared;
use crate::AdminHandle;

/// A change to make once a request has been handed off.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect {
    /// MP128B: the Supplier's credential update placed a certificate in the GNO slot.
    PlaceGnoCertificate {
        device: Eui64,
        request_id: RequestId,
    },
}

/// The effect a request will have if it is handed off.
pub(crate) fn of(h: &Header) -> Option<Effect> {
    (h.srv == Srv::new3(6, 15, 1) && h.role.is_supplier()).then_some(Effect::PlaceGnoCertificate {
        device: h.request_id.target,
        request_id: h.request_id,
    })
}

/// Applies it (a failure is logged: the request itself was accepted).
pub(crate) fn apply(shared: &Shared, effect: Effect) {
    let admin = AdminHandle::with_store(
        std::sync::Arc::clone(&shared.state),
        std::sync::Arc::clone(&shared.verifier),
        shared.clock.clone(),
        std::sync::Arc::clone(&shared.admin),
    );
    match effect {
        Effect::PlaceGnoCertificate { device, request_id } => {
            let r = admin
                .acting_as(
                    format!("pipeline {request_id}"),
                    Some("SRV 6.15.1 Update Security Credentials (KRP) dispatched".into()),
                )
                .place_gno_certificate(device);
            if let Err(e) = r {
                tracing::warn!(%device, error = %e, "GNO slot not updated after 6.15.1");
            }
        }
    }
}
