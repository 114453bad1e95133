//! Stage 6: dispatch — hand the committed request to the [`Dispatcher`](crate::Dispatcher).
//! On-demand requests are answered I0 when the dispatcher reports delivery; future-dated and
//! DCC-scheduled ones are answered I99 (acknowledged: passed access control, queued for the
//! device) at hand-off.

use dcc_signing::ExecutionKind;

use super::{Job, Shared};
use crate::egress::{Command, DispatchReply};
use crate::response::ResponseCode;
use crate::state::CertUse;

pub(crate) fn hand_off(shared: &Shared, job: Job, cert_use: CertUse) {
    let Job {
        request,
        header,
        reply,
        ..
    } = job;
    let lane = reply.lane.unwrap_or(super::lanes::Lane::L3);
    let command = Command {
        header,
        lane,
        acting_for: match cert_use {
            CertUse::Own => None,
            CertUse::Delegated { supplier } => Some(supplier),
        },
        request,
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
}
