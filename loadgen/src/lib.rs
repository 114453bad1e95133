//! loadgen: open-loop load generation for dcc-router (work in progress: see issue 5).
#![forbid(unsafe_code)]
