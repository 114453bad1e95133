//! What the router relies on, checked: the Request header against the DUIS v5.4 schema types
//! (RequestID pattern, Command Variant and SRV enumerations, element order) and the matrix (the
//! CV allowed for the SRV); and the Response header for documents the router reads back.
//!
//! Why here and not in a schema validator: the router needs typed values ([`RequestId`],
//! [`Srv`], [`CommandVariant`]) and a DUIS code per refusal, not a yes/no from an XSD engine;
//! the rest of the body is the device's business (GBCS), checked downstream.

use super::matrix::{is_service_reference, srv_info};
use super::{DuisDocument, DuisError, SR_NS};
use crate::{CommandVariant, Eui64, RequestId, Srv};

/// The header of a DUIS `sr:Request`, typed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// `RequestID`: originator, target, counter.
    pub request_id: RequestId,
    /// `FirstInSequence`, when present.
    pub first_in_sequence: Option<bool>,
    /// `PrecedingServiceRequestID`, when present.
    pub preceding_request_id: Option<RequestId>,
    /// `CommandVariant` (1..=8, allowed for the SRV).
    pub command_variant: CommandVariant,
    /// `ServiceReferenceVariant` (one of the 129).
    pub srv: Srv,
    /// Whether the matrix marks the SRV critical.
    pub critical: bool,
    /// The Body's first element (`UpdateFirmware`, `TopUpDevice`, …).
    pub body_element: String,
    /// The Body's first `ExecutionDateTime` (a future-dated request), as written.
    pub execution_date_time: Option<String>,
    /// The root's `schemaVersion`.
    pub schema_version: Option<String>,
}

/// The header of a DUIS `sr:Response` (or acknowledgement), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// `RequestID`, when present.
    pub request_id: Option<RequestId>,
    /// `ResponseID`, when present.
    pub response_id: Option<RequestId>,
    /// `ResponseCode` (`I0`, `I99`, `E12`, …).
    pub response_code: String,
    /// `ResponseDateTime`, as written.
    pub response_date_time: String,
    /// `Body/ResponseMessage/ServiceReferenceVariant`, when present.
    pub srv: Option<Srv>,
}

/// Parses an EUI-64 written as the schema's `EUI` pattern: eight hex pairs joined by `-`.
fn eui(s: &str) -> Option<Eui64> {
    let b = s.as_bytes();
    if b.len() != 23 {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let at = i * 3;
        if i > 0 && b.get(at - 1) != Some(&b'-') {
            return None;
        }
        let hi = (*b.get(at)? as char).to_digit(16)?;
        let lo = (*b.get(at + 1)? as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(Eui64(out))
}

/// Parses a Request ID by the schema's `RequestIDType` pattern (`xs:token`, so surrounding
/// whitespace is collapsed): two EUI-64s and a counter in `0..=u64::MAX` without leading
/// zeros.
pub fn parse_request_id(s: &str) -> Result<RequestId, DuisError> {
    let bad = || DuisError::invalid("RequestID", s, "must match the DUIS RequestIDType pattern");
    let t = s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let mut it = t.split(':');
    let (Some(o), Some(tg), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) || (c.len() > 1 && c.starts_with('0'))
    {
        return Err(bad());
    }
    Ok(RequestId {
        originator: eui(o).ok_or_else(bad)?,
        target: eui(tg).ok_or_else(bad)?,
        counter: c.parse().map_err(|_| bad())?,
    })
}

fn token(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

fn service_reference(s: &str) -> Option<(u8, u8)> {
    let (a, b) = token(s).split_once('.')?;
    let ok =
        |x: &str| !x.is_empty() && !x.starts_with('0') && x.bytes().all(|b| b.is_ascii_digit());
    if !ok(a) || !ok(b) {
        return None;
    }
    let r = (a.parse().ok()?, b.parse().ok()?);
    is_service_reference(r).then_some(r)
}

fn srv(s: &str) -> Result<Srv, DuisError> {
    token(s)
        .parse::<Srv>()
        .ok()
        .filter(|v| srv_info(*v).is_some())
        .ok_or_else(|| DuisError::invalid("ServiceReferenceVariant", s, "not one of the DUIS SRVs"))
}

impl DuisDocument {
    /// Checks the document as a DUIS `sr:Request` and returns its typed header.
    pub fn request_header(&self) -> Result<RequestHeader, DuisError> {
        if self.root_ns != SR_NS || self.root_local != "Request" {
            return Err(DuisError::WrongRoot {
                found: self.root_local.clone(),
                expected: "sr:Request",
            });
        }
        // The schema's sequence, in order: RequestID, FirstInSequence?,
        // PrecedingServiceRequestID?, CommandVariant, ServiceReference, ServiceReferenceVariant.
        const ORDER: [&str; 6] = [
            "RequestID",
            "FirstInSequence",
            "PrecedingServiceRequestID",
            "CommandVariant",
            "ServiceReference",
            "ServiceReferenceVariant",
        ];
        let slots = self.header_slots(&ORDER, "Request")?;
        if !self.header_seen {
            return Err(DuisError::Missing("sr:Header"));
        }
        let request_id = parse_request_id(slots[0].ok_or(DuisError::Missing("RequestID"))?)?;
        let first_in_sequence = match slots[1].map(token) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(v) => {
                return Err(DuisError::invalid(
                    "FirstInSequence",
                    v,
                    "must be an xs:boolean",
                ))
            }
        };
        let preceding_request_id = slots[2].map(parse_request_id).transpose()?;
        let cv_text = slots[3].ok_or(DuisError::Missing("CommandVariant"))?;
        let cv_num = match token(cv_text).as_bytes() {
            [d @ b'1'..=b'9'] => d - b'0',
            _ => {
                return Err(DuisError::invalid(
                    "CommandVariant",
                    cv_text,
                    "must be 1 to 9",
                ))
            }
        };
        let sr_text = slots[4].ok_or(DuisError::Missing("ServiceReference"))?;
        let reference = service_reference(sr_text).ok_or_else(|| {
            DuisError::invalid(
                "ServiceReference",
                sr_text,
                "not one of the DUIS Service References",
            )
        })?;
        let srv = srv(slots[5].ok_or(DuisError::Missing("ServiceReferenceVariant"))?)?;
        if srv.reference() != reference {
            return Err(DuisError::invalid(
                "ServiceReference",
                sr_text,
                "does not match the ServiceReferenceVariant",
            ));
        }
        let info = srv_info(srv)
            .ok_or_else(|| DuisError::invalid("ServiceReferenceVariant", "", "unknown"))?;
        let command_variant = CommandVariant::new(cv_num)
            .filter(|cv| info.allows(*cv))
            .ok_or(DuisError::CommandVariantNotAllowed { srv, cv: cv_num })?;
        if !self.body_seen {
            return Err(DuisError::Missing("sr:Body"));
        }
        let body_element = self
            .body_element
            .clone()
            .ok_or(DuisError::Missing("a Body element"))?;
        Ok(RequestHeader {
            request_id,
            first_in_sequence,
            preceding_request_id,
            command_variant,
            srv,
            critical: info.is_critical(),
            body_element,
            execution_date_time: self.execution_date_time.clone(),
            schema_version: self.schema_version.clone(),
        })
    }

    /// Checks the document as a DUIS `sr:Response` (a response or an acknowledgement).
    pub fn response_header(&self) -> Result<ResponseHeader, DuisError> {
        if self.root_ns != SR_NS || self.root_local != "Response" {
            return Err(DuisError::WrongRoot {
                found: self.root_local.clone(),
                expected: "sr:Response",
            });
        }
        const ORDER: [&str; 4] = [
            "RequestID",
            "ResponseID",
            "ResponseCode",
            "ResponseDateTime",
        ];
        let slots = self.header_slots(&ORDER, "Response")?;
        let request_id = slots[0].map(parse_request_id).transpose()?;
        let response_id = slots[1].map(parse_request_id).transpose()?;
        let code = token(slots[2].ok_or(DuisError::Missing("ResponseCode"))?);
        // DUIS's I/E/W codes, and the router's own R codes for what DUIS publishes no code
        // for (bad signature, revoked certificate, replay…; dcc-router's `response.rs`), so
        // that the router's answers read back as DUIS Responses.
        let ok = code.len() >= 2
            && code.len() <= 8
            && matches!(code.as_bytes().first(), Some(b'I' | b'E' | b'W' | b'R'))
            && code.bytes().skip(1).all(|b| b.is_ascii_digit());
        if !ok {
            return Err(DuisError::invalid(
                "ResponseCode",
                code,
                "not a DUIS response code",
            ));
        }
        let time = token(slots[3].ok_or(DuisError::Missing("ResponseDateTime"))?);
        if time.len() < 19 || time.as_bytes().get(10) != Some(&b'T') {
            return Err(DuisError::invalid(
                "ResponseDateTime",
                time,
                "must be an xs:dateTime",
            ));
        }
        if !self.body_seen {
            return Err(DuisError::Missing("sr:Body"));
        }
        if let Some(sr) = &self.body_service_reference {
            service_reference(sr).ok_or_else(|| {
                DuisError::invalid(
                    "ServiceReference",
                    sr,
                    "not one of the DUIS Service References",
                )
            })?;
        }
        let srv = self.body_srv.as_deref().map(srv).transpose()?;
        Ok(ResponseHeader {
            request_id,
            response_id,
            response_code: code.to_owned(),
            response_date_time: time.to_owned(),
            srv,
        })
    }

    /// The Header's fields placed by the schema's sequence `order`: each at most once, in
    /// order, none other.
    fn header_slots<const N: usize>(
        &self,
        order: &[&'static str; N],
        kind: &'static str,
    ) -> Result<[Option<&str>; N], DuisError> {
        let mut slots: [Option<&str>; N] = [None; N];
        let mut last = None;
        for (name, value) in &self.header {
            let i = order.iter().position(|n| n == name).ok_or_else(|| {
                DuisError::invalid("Header", name, "not an element of this DUIS header")
            })?;
            if last.is_some_and(|l| i <= l) {
                return Err(match slots.get(i) {
                    Some(Some(_)) => DuisError::Duplicate(order[i]),
                    _ => DuisError::invalid(kind, name, "header element out of the schema's order"),
                });
            }
            last = Some(i);
            if let Some(s) = slots.get_mut(i) {
                *s = Some(value);
            }
        }
        Ok(slots)
    }

    /// Checks the header by the root: a Request or a Response.
    pub fn check_header(&self) -> Result<(), DuisError> {
        match self.root_local.as_str() {
            "Request" => self.request_header().map(|_| ()),
            _ => self.response_header().map(|_| ()),
        }
    }
}
