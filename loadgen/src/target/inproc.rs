//! `inproc`: an embedded dcc-router built from its default policy.
//!
//! Not wired yet: the router core has not landed on this branch.

use std::sync::Arc;

use super::{Target, TargetError};
use crate::population::World;

/// Builds the embedded router target and registers `world` in it.
pub fn build(_world: &World) -> Result<Arc<dyn Target>, TargetError> {
    Err(TargetError::NotSupported(
        "the inproc target needs the dcc-router core, which is not merged into loadgen yet; \
         use --target mock"
            .to_owned(),
    ))
}
