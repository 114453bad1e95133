//! Answers held back while a verify worker finishes its batch, then delivered in one pass.
//!
//! Why: delivering an answer is the one per-request cost of a worker that is not verification
//! or bookkeeping — completing a future or running the ingress's callback wakes whoever waits
//! (a thread, or the task that writes a stream's answers), and a wake-up is a system call and,
//! on a virtual machine, an inter-processor interrupt: in the profile before this module it was
//! 10 % of the worker's time (BENCHMARKS.md, "Router pipeline"). Answered one at a time
//! between commits, a waiter that keeps up is woken for every answer: woken onto the worker's
//! core, it preempts the worker, takes the one answer there is and sleeps again before the next.
//!
//! How: [`Batch::open`] marks the worker thread as batching; until the guard is dropped, a
//! [`Reply`](super::Reply) answered on this thread is counted and timed as before, and its
//! delivery queued here. Dropping the guard — at the end of the batch, or while unwinding from
//! a panic — delivers everything queued, each delivery isolated from a panicking callback, so
//! every reply is still answered exactly once (a `Reply` dropped unanswered still answers
//! *unavailable*, through here); then it runs what the callbacks asked to run once all are
//! delivered ([`after_answers`]). That second step is what removes the wake-ups: a callback
//! that forwards to a queue keeps its answer aside and flushes once, so each queue gets the
//! batch's answers in one message and its consumer one wake-up per batch. Delivering back to
//! back alone did not do it (measured: the first wake-up already preempts the worker).
//!
//! Answers made on other threads (admission refusals, a dispatcher's own thread) are delivered
//! at once, as before. The callbacks no longer run under the signer certificate's read lock
//! (commit answers inside it), so a revocation waits less. The answer's `total` timing is
//! taken when it is made, before the rest of its batch commits (a few µs at most).

use std::cell::RefCell;

use super::ReplyTo;
use crate::response::Response;

/// Per thread: whether a batch is open, and the deliveries it holds (the buffer is kept
/// between batches, so holding costs no allocation once warm); while its answers are being
/// delivered, what is to run once they all are ([`after_answers`]).
#[derive(Default)]
struct Held {
    open: bool,
    queued: Vec<(ReplyTo, Response)>,
    delivering: bool,
    after: Vec<Box<dyn FnOnce()>>,
}

/// Runs `f` once the answers a verify worker is delivering together have all been delivered;
/// at once when called anywhere else (outside an answer callback, or in one run on another
/// thread: an admission refusal, a dispatcher's thread).
///
/// For a [`Router::submit_with`](crate::Router::submit_with) callback that forwards answers
/// to a queue whose consumer must be woken (the QUIC ingress's stream writers): the callback
/// keeps its answer aside and asks for a flush here, and the flush hands each queue all its
/// answers of the batch in one message — one wake-up per queue per batch. Waking the consumer
/// from every callback instead costs a wake-up per answer: the consumer, woken onto the
/// worker's core, preempts the worker, takes the one answer there is and sleeps again before
/// the next callback runs.
pub fn after_answers(f: impl FnOnce() + 'static) {
    let mut f = Some(f);
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            if held.delivering {
                if let Some(f) = f.take() {
                    held.after.push(Box::new(f));
                }
            }
        }
    });
    if let Some(f) = f {
        f();
    }
}

thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

/// Delivers `r` to `to` now, or — inside an open [`Batch`] on this thread — when it closes.
pub(super) fn deliver(to: ReplyTo, r: Response) {
    let mut pending = Some((to, r));
    // `try_with`: during thread teardown the slot may be gone; then deliver at once.
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            if held.open {
                if let Some(p) = pending.take() {
                    held.queued.push(p);
                }
            }
        }
    });
    if let Some((to, r)) = pending {
        to.deliver(r);
    }
}

/// While alive, answers made on this thread are held; dropped, it delivers them.
#[must_use = "answers are delivered when the batch is dropped"]
pub(crate) struct Batch {
    /// False for a nested `open` (the outer batch delivers).
    owner: bool,
}

impl Batch {
    /// Opens a batch on this thread (nested: the outer one delivers).
    pub(crate) fn open() -> Batch {
        let owner = HELD
            .try_with(|held| match held.try_borrow_mut() {
                Ok(mut held) if !held.open => {
                    held.open = true;
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        Batch { owner }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        // Take the queue out and close the batch before running any callback: a callback
        // that submits (and is answered on this thread) is delivered at once, not lost.
        let mut queued = HELD
            .try_with(|held| {
                held.try_borrow_mut()
                    .map(|mut held| {
                        held.open = false;
                        held.delivering = true;
                        std::mem::take(&mut held.queued)
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        for (to, r) in queued.drain(..) {
            // One callback's panic must not cost the others their answer.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| to.deliver(r)));
        }
        // Give the (empty) buffer back for the next batch; take what waits for the end.
        let after = HELD
            .try_with(|held| {
                held.try_borrow_mut()
                    .map(|mut held| {
                        held.delivering = false;
                        if held.queued.capacity() == 0 {
                            held.queued = queued;
                        }
                        std::mem::take(&mut held.after)
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        for f in after {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        }
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("owner", &self.owner).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::response::{ResponseCode, Timings};

    fn answer(code: ResponseCode) -> Response {
        Response {
            request_id: None,
            code,
            detail: None,
            lane: None,
            timings: Timings::default(),
        }
    }

    fn recorder(log: &Arc<Mutex<Vec<ResponseCode>>>) -> ReplyTo {
        let log = Arc::clone(log);
        ReplyTo::Callback(Box::new(move |r: Response| {
            log.lock().unwrap().push(r.code);
        }))
    }

    #[test]
    fn outside_a_batch_answers_go_at_once() {
        let log = Arc::new(Mutex::new(Vec::new()));
        deliver(recorder(&log), answer(ResponseCode::Success));
        assert_eq!(*log.lock().unwrap(), [ResponseCode::Success]);
    }

    #[test]
    fn a_batch_holds_answers_until_it_closes_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let _batch = Batch::open();
            deliver(recorder(&log), answer(ResponseCode::Success));
            {
                // Nested: the outer batch still holds.
                let _inner = Batch::open();
                deliver(recorder(&log), answer(ResponseCode::Busy));
            }
            assert!(log.lock().unwrap().is_empty());
        }
        assert_eq!(
            *log.lock().unwrap(),
            [ResponseCode::Success, ResponseCode::Busy]
        );
    }

    #[test]
    fn a_panicking_callback_costs_the_others_nothing() {
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let _batch = Batch::open();
            deliver(
                ReplyTo::Callback(Box::new(|_| panic!("callback"))),
                answer(ResponseCode::Success),
            );
            deliver(recorder(&log), answer(ResponseCode::BadSignature));
        }
        assert_eq!(*log.lock().unwrap(), [ResponseCode::BadSignature]);
    }

    #[test]
    fn a_callback_answered_during_delivery_is_not_lost() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = recorder(&log);
        {
            let _batch = Batch::open();
            deliver(
                ReplyTo::Callback(Box::new(move |_| {
                    deliver(inner, answer(ResponseCode::Busy))
                })),
                answer(ResponseCode::Success),
            );
        }
        assert_eq!(*log.lock().unwrap(), [ResponseCode::Busy]);
    }

    #[test]
    fn after_answers_runs_once_the_batch_is_delivered_and_at_once_elsewhere() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        after_answers(move || l.lock().unwrap().push(ResponseCode::Acknowledged));
        assert_eq!(*log.lock().unwrap(), [ResponseCode::Acknowledged]);
        log.lock().unwrap().clear();
        {
            let _batch = Batch::open();
            for code in [ResponseCode::Success, ResponseCode::Busy] {
                let l = Arc::clone(&log);
                deliver(
                    ReplyTo::Callback(Box::new(move |r: Response| {
                        l.lock().unwrap().push(r.code);
                        let l = Arc::clone(&l);
                        after_answers(move || l.lock().unwrap().push(ResponseCode::Acknowledged));
                    })),
                    answer(code),
                );
            }
        }
        assert_eq!(
            *log.lock().unwrap(),
            [
                ResponseCode::Success,
                ResponseCode::Busy,
                ResponseCode::Acknowledged,
                ResponseCode::Acknowledged
            ]
        );
    }

    #[test]
    fn unwinding_through_a_batch_still_delivers() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let to = recorder(&log);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _batch = Batch::open();
            deliver(to, answer(ResponseCode::Unavailable));
            panic!("verifier");
        }));
        assert!(caught.is_err());
        assert_eq!(*log.lock().unwrap(), [ResponseCode::Unavailable]);
    }
}
