//! Stage 6: dispatch — hand the committed request to the [`Dispatcher`](crate::Dispatcher).
//! On-demand requests are answered I0 when the dispatcher reports delivery; future-dated and
//! DCC-scheduled ones are answered I99 (acknowledged: passed access control, queued for the
//! device) at hand-off.
//!
//! DP094 (tabasc-dp091-dp095.txt, "Supporting prepayment customers in no SM WAN scenarios"):
//! an on-demand request whose command variant asks for local delivery — CV 2/6, or CV 3/7 to a
//! device whose SM WAN state is none ("via WAN if possible, else local") — is not sent over
//! the WAN: the command goes back to the User, answered I0 with detail `local-delivery`, in
//! the lane it was admitted to (a prepayment device's L1 promotion is kept).

use dcc_signing::{CommandVariant, ExecutionKind};

use super::effects::{self, Effect};
use super::{cos, Job, Shared};
use crate::egress::{Command, DispatchReply};
use crate::response::ResponseCode;
use crate::state::{CertUse, WanState};

/// The detail of an I0 answer that returns the command for local delivery.
pub(crate) const LOCAL_DELIVERY: &str = "local-delivery";

/// How a command reaches its device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    /// Over the SM WAN (the dispatcher).
    Wan,
    /// Back to the User for local delivery (HAN, PPMID, technician).
    Local,
    /// Neither: WAN-only variant, no WAN (refused E20 at admission).
    Unreachable,
}

/// The route for command variant `cv` to a device in WAN state `wan` (DUIS: 1/5 via WAN, 2/6
/// local, 3/7 both; others are not delivered locally).
pub(crate) fn route(cv: CommandVariant, wan: WanState) -> Route {
    match (cv.get(), wan) {
        (1 | 5, WanState::None) => Route::Unreachable,
        (2 | 6, _) | (3 | 7, WanState::None) => Route::Local,
        _ => Route::Wan,
    }
}

/// Hands `job` off (or answers its refusal by the CoS Party stage); returns the state change
/// its hand-off makes, to apply once the certificate lock is released ([`effects`]).
pub(crate) fn hand_off(shared: &Shared, job: Job, cert_use: CertUse) -> Option<Effect> {
    let Job {
        request,
        header,
        reply,
        ..
    } = job;
    let lane = reply.lane.unwrap_or(super::lanes::Lane::L3);
    // Stage 6a, SRV 6.23: the CoS Party counter-signs before anything leaves the router.
    let cos = if cos::applies(&header) {
        match cos::counter_sign(&shared.state, &header, &request) {
            Ok(c) => Some(c),
            Err((code, detail)) => {
                reply.send(code, Some(detail));
                return None;
            }
        }
    } else {
        None
    };
    let effect = effects::of(&header, cos.as_ref());
    // The state now, not at admission: an admin change in between is honoured (a device that
    // lost its WAN since is answered E20 by the dispatcher).
    let wan = shared
        .state
        .devices
        .get(header.request_id.target)
        .map_or(WanState::Ok, |d| d.wan);
    if header.execution == ExecutionKind::OnDemand
        && route(header.command_variant, wan) == Route::Local
    {
        reply.send(ResponseCode::Success, Some(LOCAL_DELIVERY));
        return effect;
    }
    let command = Command {
        header,
        lane,
        acting_for: match cert_use {
            CertUse::Own => None,
            CertUse::Delegated { supplier } => Some(supplier),
        },
        request,
        wan,
        cos,
    };
    if header.execution == ExecutionKind::OnDemand {
        shared
            .dispatcher
            .dispatch(command, DispatchReply::awaiting(reply));
    } else {
        reply.send(ResponseCode::Acknowledged, None);
        shared
            .dispatcher
            .dispatch(command, DispatchReply::detached());
    }
    effect
}
