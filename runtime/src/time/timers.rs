//! The runtime's timer queue.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// A registered timer: its deadline and a sequence number that makes the key unique.
pub(crate) type TimerKey = (Instant, u64);

#[derive(Default)]
pub(crate) struct TimerQueue {
    entries: RefCell<BTreeMap<TimerKey, Waker>>,
    next_seq: Cell<u64>,
}

impl TimerQueue {
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let key = (deadline, seq);
        self.entries.borrow_mut().insert(key, waker);
        key
    }

    /// Replaces the waker of a live timer; false if the timer already fired.
    pub(crate) fn update(&self, key: TimerKey, waker: &Waker) -> bool {
        let mut entries = self.entries.borrow_mut();
        match entries.get_mut(&key) {
            Some(w) => {
                if !w.will_wake(waker) {
                    let old = std::mem::replace(w, waker.clone());
                    drop(entries);
                    drop(old);
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&self, key: TimerKey) {
        let removed = self.entries.borrow_mut().remove(&key);
        drop(removed);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .borrow()
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    /// Wakes every timer whose deadline is at or before `now`.
    pub(crate) fn fire(&self, now: Instant) {
        let expired = {
            let mut entries = self.entries.borrow_mut();
            match entries.keys().next() {
                Some((first, _)) if *first <= now => {}
                _ => return,
            }
            let later = entries.split_off(&(now, u64::MAX));
            std::mem::replace(&mut *entries, later)
        };
        for (_, waker) in expired {
            waker.wake();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}
