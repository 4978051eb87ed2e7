//! The pull queue of one event subscription: events, their locks, delivery counts and dead letters, as pure state
//! over an injected instant (the HTTP side and the waiting are in `serve.rs`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::eventgrid::namespace::{FailedLockToken, LockTokenResult};

/// An event given up on: rejected by a receiver, or delivered the maximum number of times.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The CloudEvent as published.
    pub event: Value,
    /// `Rejected` or `MaxDeliveryCountExceeded`.
    pub reason: String,
    /// Deliveries made.
    pub delivery_count: u32,
}

#[derive(Debug)]
struct Entry {
    event: Value,
    id: String,
    delivery_count: u32,
    available_at: Instant,
    lock: Option<(String, Instant)>,
}

#[derive(Debug)]
pub(super) struct Queue {
    entries: VecDeque<Entry>,
    pub(super) dead_letters: Vec<DeadLetter>,
    pub(super) acknowledged: HashMap<String, u32>,
    /// Deliveries per event id, kept after the event is settled.
    pub(super) deliveries: HashMap<String, u32>,
    pub(super) lock_duration: Duration,
    pub(super) max_delivery_count: u32,
}

/// What a lock operation does to the entry holding a live lock.
#[derive(Clone, Copy, Debug)]
pub(super) enum Settle {
    Acknowledge,
    Release(Duration),
    Reject,
    Renew,
}

impl Queue {
    pub(super) fn new(lock_duration: Duration, max_delivery_count: u32) -> Self {
        Self {
            entries: VecDeque::new(),
            dead_letters: Vec::new(),
            acknowledged: HashMap::new(),
            deliveries: HashMap::new(),
            lock_duration,
            max_delivery_count,
        }
    }

    pub(super) fn publish(&mut self, event: Value, now: Instant) {
        let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        self.entries.push_back(Entry { event, id, delivery_count: 0, available_at: now, lock: None });
    }

    /// Events not yet acknowledged, rejected or dead-lettered.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Locks up to `max` available events for a receiver: `(lock token, delivery count, event)`. An event whose
    /// lock expired after its last allowed delivery goes to the dead letters instead.
    pub(super) fn receive(
        &mut self,
        max: usize,
        now: Instant,
        token: &mut impl FnMut() -> String,
    ) -> Vec<(String, u32, Value)> {
        let max_deliveries = self.max_delivery_count;
        let mut dead = Vec::new();
        let mut out = Vec::new();
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            let expired = entry.lock.as_ref().is_some_and(|(_, until)| *until <= now);
            if expired {
                entry.lock = None;
            }
            if entry.lock.is_some() || entry.available_at > now {
                continue;
            }
            if entry.delivery_count >= max_deliveries {
                dead.push(index);
                continue;
            }
            entry.delivery_count += 1;
            *self.deliveries.entry(entry.id.clone()).or_default() += 1;
            let lock_token = token();
            entry.lock = Some((lock_token.clone(), now + self.lock_duration));
            out.push((lock_token, entry.delivery_count, entry.event.clone()));
        }
        for index in dead.into_iter().rev() {
            if let Some(entry) = self.entries.remove(index) {
                self.dead_letter(entry, "MaxDeliveryCountExceeded");
            }
        }
        out
    }

    /// Applies `settle` to each token's entry whose lock is still held; the others fail with `TokenLost`.
    pub(super) fn settle(&mut self, tokens: &[String], settle: Settle, now: Instant) -> LockTokenResult {
        let mut result = LockTokenResult::default();
        for token in tokens {
            let held = self
                .entries
                .iter()
                .position(|entry| entry.lock.as_ref().is_some_and(|(held, until)| held == token && *until > now));
            let Some(index) = held else {
                result.failed_lock_tokens.push(FailedLockToken::new(
                    token.as_str(),
                    "TokenLost",
                    "the lock token is not valid: it is unknown, or its lock expired or was already settled",
                ));
                continue;
            };
            match settle {
                Settle::Acknowledge => {
                    let entry = self.entries.remove(index).expect("the index was just found");
                    *self.acknowledged.entry(entry.id).or_default() += 1;
                }
                Settle::Reject => {
                    let entry = self.entries.remove(index).expect("the index was just found");
                    self.dead_letter(entry, "Rejected");
                }
                Settle::Release(delay) => {
                    let entry = &mut self.entries[index];
                    entry.lock = None;
                    entry.available_at = now + delay;
                }
                Settle::Renew => {
                    let duration = self.lock_duration;
                    if let Some((_, until)) = self.entries[index].lock.as_mut() {
                        *until = now + duration;
                    }
                }
            }
            result.succeeded_lock_tokens.push(token.clone());
        }
        result
    }

    /// The soonest instant after `now` at which a lock expires or a released event becomes available.
    pub(super) fn next_change(&self, now: Instant) -> Option<Instant> {
        self.entries
            .iter()
            .map(|entry| entry.lock.as_ref().map_or(entry.available_at, |(_, until)| *until))
            .filter(|at| *at > now)
            .min()
    }

    fn dead_letter(&mut self, entry: Entry, reason: &str) {
        self.dead_letters.push(DeadLetter {
            event: entry.event,
            reason: reason.to_owned(),
            delivery_count: entry.delivery_count,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_with(ids: &[&str], now: Instant) -> Queue {
        let mut queue = Queue::new(Duration::from_secs(60), 2);
        for id in ids {
            queue.publish(serde_json::json!({ "id": id }), now);
        }
        queue
    }

    fn tokens() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("t{n}")
        }
    }

    #[test]
    fn a_locked_event_is_not_handed_out_again_until_its_lock_expires() {
        let now = Instant::now();
        let mut queue = queue_with(&["a"], now);
        let mut token = tokens();
        assert_eq!(queue.receive(10, now, &mut token).len(), 1);
        assert!(queue.receive(10, now + Duration::from_secs(59), &mut token).is_empty());
        let again = queue.receive(10, now + Duration::from_secs(60), &mut token);
        assert_eq!((again[0].0.as_str(), again[0].1), ("t2", 2));
        // The old token no longer settles anything.
        let result = queue.settle(&["t1".into(), "t2".into()], Settle::Acknowledge, now + Duration::from_secs(61));
        assert_eq!(result.succeeded_lock_tokens, ["t2"]);
        assert_eq!(result.failed_lock_tokens[0].lock_token, "t1");
        assert_eq!(queue.acknowledged["a"], 1);
    }

    #[test]
    fn an_event_past_its_maximum_deliveries_is_dead_lettered() {
        let now = Instant::now();
        let mut queue = queue_with(&["a"], now);
        let mut token = tokens();
        for (delivery, second) in [(1, 0), (2, 60)] {
            let got = queue.receive(10, now + Duration::from_secs(second), &mut token);
            assert_eq!(got[0].1, delivery);
        }
        assert!(queue.receive(10, now + Duration::from_secs(120), &mut token).is_empty());
        assert_eq!(queue.dead_letters[0].reason, "MaxDeliveryCountExceeded");
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn release_delays_and_renew_extends() {
        let now = Instant::now();
        let mut queue = queue_with(&["a", "b"], now);
        let mut token = tokens();
        queue.receive(10, now, &mut token);
        queue.settle(&["t1".into()], Settle::Release(Duration::from_secs(10)), now);
        queue.settle(&["t2".into()], Settle::Renew, now + Duration::from_secs(50));
        assert!(queue.receive(10, now + Duration::from_secs(9), &mut token).is_empty());
        let got = queue.receive(10, now + Duration::from_secs(100), &mut token);
        assert_eq!(got.len(), 1, "b's lock was renewed until 110 s");
        assert_eq!(got[0].2["id"], "a");
        let rejected = queue.settle(&["t2".into()], Settle::Reject, now + Duration::from_secs(105));
        assert!(rejected.is_complete());
        assert_eq!(queue.dead_letters[0].reason, "Rejected");
    }
}
