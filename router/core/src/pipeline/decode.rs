//! Stage 1: decode — the envelope without copying the body (bounded sizes, typed errors); a
//! DUIS request, which its ingress has parsed and checked ([`DuisRequest::decode`]), mapped
//! to the same header (`duis_header`'s table).

use dcc_signing::duis::DuisRequest;
use dcc_signing::envelope::{DecodeError, Envelope, Header, MAGIC};
use dcc_signing::{Eui64, ExecutionKind, RequestId, UserRole};

use super::Shared;
use crate::response::ResponseCode;

/// Decodes, or names the defect (answered R1 with [`DecodeError::code`] as detail).
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    Envelope::decode(bytes)
}

/// The Request ID of an envelope that failed to decode, when its bytes are there to read
/// (magic right, header long enough), so that the refusal can still be correlated.
pub(crate) fn salvage_request_id(bytes: &[u8]) -> Option<RequestId> {
    let get = |at: usize| -> Option<[u8; 8]> { bytes.get(at..at + 8)?.try_into().ok() };
    if bytes.get(..4)? != MAGIC {
        return None;
    }
    Some(RequestId {
        originator: Eui64(get(12)?),
        target: Eui64(get(20)?),
        counter: u64::from_be_bytes(get(28)?),
    })
}

/// The envelope-shaped header of a DUIS request, so that one admission serves both ingresses.
///
/// | header field | from the DUIS document | refusal |
/// |---|---|---|
/// | Request ID, SRV, CV | `RequestID`, `ServiceReferenceVariant`, `CommandVariant` (checked at parse) | — |
/// | signer | `X509IssuerSerial`: the one stored certificate with that serial | R2 `unknown-certificate`, `ambiguous-signer` |
/// | role | the first User Role the originator holds that may send the SRV (DUIS carries none; admission then checks it as for an envelope) | — |
/// | execution | `ExecutionDateTime` in the Body → future-dated at that time | R1 `execution-date-time` |
pub(crate) fn duis_header(
    shared: &Shared,
    d: &DuisRequest,
) -> Result<Header, (ResponseCode, &'static str)> {
    let h = &d.header;
    let signer = match shared
        .state
        .certs
        .by_serial(&d.signed.signature.signer.serial)
    {
        Ok(id) => id,
        Err(0) => return Err((ResponseCode::UnknownCertificate, "unknown-certificate")),
        Err(_) => return Err((ResponseCode::UnknownCertificate, "ambiguous-signer")),
    };
    let originator = h.request_id.originator;
    let eligible = shared.policy.catalogue.get(h.srv).map(|e| e.roles);
    let held = shared.state.parties.get(originator).map(|p| p.roles);
    let role = UserRole::ALL
        .into_iter()
        .find(|r| held.is_some_and(|s| s.contains(*r)) && eligible.is_some_and(|s| s.contains(*r)))
        .or_else(|| {
            UserRole::ALL
                .into_iter()
                .find(|r| held.is_some_and(|s| s.contains(*r)))
        })
        // An unknown originator: admission refuses it (E1) whatever the role.
        .unwrap_or(UserRole::ALL[0]);
    let (execution, execute_at) = match &h.execution_date_time {
        None => (ExecutionKind::OnDemand, 0),
        Some(t) => (
            ExecutionKind::FutureDated,
            unix_seconds(t).ok_or((ResponseCode::Malformed, "execution-date-time"))?,
        ),
    };
    Ok(Header {
        role,
        command_variant: h.command_variant,
        execution,
        srv: h.srv,
        request_id: h.request_id,
        execute_at,
        signer,
    })
}

/// `YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]` (xs:dateTime as DUIS writes it; no zone = UTC) →
/// Unix seconds, `None` when it is not one or is before 1970.
fn unix_seconds(t: &str) -> Option<u64> {
    let t = t.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':');
    let (hh, mm, ss) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    if c.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset_s = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o.get(1..)?.split_once(':')?;
            sign * (num(oh)? * 3600 + num(om)? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_s;
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn duis_date_times_read_as_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2022-08-17T15:45:42.790Z"),
            Some(1_660_751_142)
        );
        assert_eq!(
            unix_seconds("2022-08-17T16:45:42+01:00"),
            Some(1_660_751_142)
        );
        assert_eq!(unix_seconds("2022-08-17T15:45:42"), Some(1_660_751_142));
        for bad in [
            "",
            "2022-13-01T00:00:00Z",
            "2022-08-17 15:45:42",
            "1969-12-31T23:59:59Z",
            "2022-08-17T25:00:00Z",
            "x-08-17T00:00:00Z",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }
}
