//! dcc-router: the Service Request routing pipeline (work in progress: see issue 3).
#![forbid(unsafe_code)]

pub mod ingress;
