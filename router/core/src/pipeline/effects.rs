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
//! | 6.23 CoS Update Security Credentials, counter-signed by the CoS Party ([`super::cos`]) | the device's registered Supplier becomes the gaining Supplier, the pending change is cleared; the audit entry names the CoS key that signed ([`AdminHandle::complete_change_of_supplier`](crate::AdminHandle::complete_change_of_supplier)) |

use std::sync::Arc;

use dcc_signing::envelope::Header;
use dcc_signing::{Eui64, RequestId, Srv};

use super::Shared;
use crate::egress::CosCounterSignature;
use crate::AdminHandle;

/// A change to make once a request has been handed off.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// MP128B: the Supplier's credential update placed a certificate in the GNO slot.
    PlaceGnoCertificate {
        device: Eui64,
        request_id: RequestId,
    },
    /// ECoS: the gaining Supplier's 6.23 was counter-signed and handed off.
    CompleteChangeOfSupplier {
        device: Eui64,
        gaining: Eui64,
        request_id: RequestId,
        key_id: Arc<str>,
    },
}

/// The effect a request has once it is handed off (`cos`: its CoS counter-signature).
pub(crate) fn of(h: &Header, cos: Option<&CosCounterSignature>) -> Option<Effect> {
    if let Some(c) = cos {
        return Some(Effect::CompleteChangeOfSupplier {
            device: h.request_id.target,
            gaining: h.request_id.originator,
            request_id: h.request_id,
            key_id: Arc::clone(&c.key_id),
        });
    }
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
        Effect::CompleteChangeOfSupplier {
            device,
            gaining,
            request_id,
            key_id,
        } => {
            let r = admin
                .acting_as(
                    format!("pipeline {request_id}"),
                    Some(
                        "SRV 6.23 CoS Update Security Credentials counter-signed and dispatched"
                            .into(),
                    ),
                )
                .complete_change_of_supplier(device, gaining, &key_id);
            if let Err(e) = r {
                tracing::warn!(%device, error = %e, "registered supplier not moved after 6.23");
            }
        }
    }
}
