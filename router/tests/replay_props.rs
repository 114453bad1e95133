//! Property tests of the anti-replay window against a model: a set of accepted counters and
//! the rule "accept iff never accepted and above mark - WINDOW".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use dcc_router::state::replay::{ReplayVerdict, ReplayWindow, WINDOW};
use proptest::prelude::*;

#[derive(Default)]
struct Model {
    seen: HashSet<u64>,
    mark: Option<u64>,
}

impl Model {
    fn accept(&mut self, c: u64) -> ReplayVerdict {
        if let Some(m) = self.mark {
            if c <= m && m - c >= WINDOW {
                return ReplayVerdict::TooOld;
            }
        }
        if !self.seen.insert(c) {
            return ReplayVerdict::Duplicate;
        }
        self.mark = Some(self.mark.map_or(c, |m| m.max(c)));
        ReplayVerdict::Fresh
    }
}

/// Counters that cluster (so duplicates and in-window reordering are common) with occasional
/// long jumps (so word clearing and the too-old edge are exercised).
fn counters() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![
            6 => 0u64..300,
            3 => 0u64..(3 * WINDOW),
            1 => 0u64..(1 << 20),
            1 => (u64::MAX - 5_000)..=u64::MAX,
        ],
        1..600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn window_matches_model(base in 0u64..(1 << 40), steps in counters()) {
        let mut w = ReplayWindow::default();
        let mut m = Model::default();
        for s in steps {
            let c = base.saturating_add(s);
            prop_assert_eq!(w.check(c), m_check(&m, c));
            prop_assert_eq!(w.accept(c), m.accept(c), "counter {}", c);
            prop_assert_eq!(w.high_water_mark(), m.mark);
        }
    }

    #[test]
    fn never_accepts_twice(steps in counters()) {
        let mut w = ReplayWindow::default();
        let mut accepted = HashSet::new();
        for c in steps {
            if w.accept(c) == ReplayVerdict::Fresh {
                prop_assert!(accepted.insert(c), "{} accepted twice", c);
            }
        }
    }
}

fn m_check(m: &Model, c: u64) -> ReplayVerdict {
    if let Some(mk) = m.mark {
        if c <= mk && mk - c >= WINDOW {
            return ReplayVerdict::TooOld;
        }
    }
    if m.seen.contains(&c) {
        ReplayVerdict::Duplicate
    } else {
        ReplayVerdict::Fresh
    }
}
