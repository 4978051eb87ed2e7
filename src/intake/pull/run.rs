//! The receive loop: receive, classify, admit, settle; renew locks while admitting; back off on failures.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::watch;

use super::classify::{classify, Classified};
use super::PullSource;
use crate::eventgrid::namespace::{Error, ErrorKind, ReceivedEvent, ReleaseDelay};
use crate::journal::Journal;
use crate::recorder::{Intake, SourceOutcome};
use crate::HttpClient;

/// How a received event is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settlement {
    Acknowledge,
    Release(ReleaseDelay),
    Reject,
}

impl<S: HttpClient<Full<Bytes>>> PullSource<S> {
    /// Receives and admits events until `shutdown` completes: the event in hand is finished, the rest of its
    /// batch released at once, and `run` returns `Ok`. It returns an error only when the service refuses the
    /// credential or knows no such topic or subscription; every other failure is logged and retried.
    pub async fn run<J: Journal>(
        self,
        intake: Intake<J>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let (stop, stopping) = watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stop.send(true);
            std::future::pending::<()>().await
        };
        tokio::select! {
            result = self.pull(&intake, stopping) => result,
            () = signal => unreachable!("the signal future never completes"),
        }
    }

    async fn pull<J: Journal>(&self, intake: &Intake<J>, mut stopping: watch::Receiver<bool>) -> Result<(), Error> {
        let options = &self.options;
        let mut backoff = options.min_backoff;
        loop {
            if *stopping.borrow() {
                return Ok(());
            }
            let received = tokio::select! {
                received = self.client.receive(options.max_events, options.max_wait) => received,
                _ = stopping.wait_for(|stop| *stop) => return Ok(()),
            };
            match received {
                Ok(events) => {
                    self.source.count(SourceOutcome::Received, events.len());
                    if !self.batch(intake, events, &stopping).await {
                        backoff = options.min_backoff;
                        continue;
                    }
                    // The journal refused: receiving at full speed would only spend the events' deliveries.
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stopping.wait_for(|stop| *stop) => return Ok(()),
                    }
                    backoff = (backoff * 2).min(options.max_backoff);
                }
                Err(error) if is_permanent(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(source = %self.source, error = %error, "receive failed; retrying in {backoff:?}");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stopping.wait_for(|stop| *stop) => return Ok(()),
                    }
                    backoff = (backoff * 2).min(options.max_backoff);
                }
            }
        }
    }

    /// Admits a batch event by event, settling each as soon as its fate is known; answers whether an admission
    /// failed.
    async fn batch<J: Journal>(
        &self,
        intake: &Intake<J>,
        events: Vec<ReceivedEvent>,
        stopping: &watch::Receiver<bool>,
    ) -> bool {
        let mut failed = false;
        let mut unsettled: Vec<String> = events.iter().map(|e| e.broker_properties.lock_token.clone()).collect();
        for event in events {
            let token = event.broker_properties.lock_token.clone();
            let settlement = if *stopping.borrow() {
                Settlement::Release(ReleaseDelay::None)
            } else {
                self.with_renewal(&unsettled, self.decide(intake, &event)).await
            };
            failed |= matches!(settlement, Settlement::Release(_));
            self.settle(&token, settlement).await;
            unsettled.retain(|held| *held != token);
        }
        failed
    }

    /// What to do with one event: admit it, or journal it as rejected.
    async fn decide<J: Journal>(&self, intake: &Intake<J>, event: &ReceivedEvent) -> Settlement {
        let text = event.event.get().as_bytes();
        let failed = |error: &dyn std::fmt::Display, shutting_down: bool| {
            tracing::warn!(source = %self.source, error = %error, "admission failed; releasing the event");
            Settlement::Release(if shutting_down { ReleaseDelay::None } else { self.options.release_delay })
        };
        match classify(text) {
            Classified::Other => Settlement::Acknowledge,
            Classified::Recording(events) => match intake.admit_from(&self.source, &events).await {
                Ok(_) => Settlement::Acknowledge,
                Err(error) => failed(&error, error.is_shutting_down()),
            },
            Classified::Malformed(reason) => match intake.reject_message(&self.source, text, &reason).await {
                Ok(_) => Settlement::Reject,
                Err(error) => failed(&error, error.is_shutting_down()),
            },
        }
    }

    /// Runs `work`, renewing the locks of `held` every half lock duration until it is done.
    async fn with_renewal(&self, held: &[String], work: impl Future<Output = Settlement>) -> Settlement {
        let every = (self.options.lock_duration / 2).max(Duration::from_millis(100));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                settlement = &mut work => return settlement,
                _ = ticks.tick() => match self.client.renew_locks(held).await {
                    Ok(result) => {
                        for failed in &result.failed_lock_tokens {
                            tracing::warn!(source = %self.source, code = %failed.error.code, "a lock could not be renewed; its event will come again");
                        }
                    }
                    Err(error) => tracing::warn!(source = %self.source, error = %error, "renewing locks failed"),
                },
            }
        }
    }

    async fn settle(&self, token: &str, settlement: Settlement) {
        let tokens = [token.to_owned()];
        let (result, outcome) = match settlement {
            Settlement::Acknowledge => (self.client.acknowledge(&tokens).await, SourceOutcome::Acknowledged),
            Settlement::Release(delay) => (self.client.release(&tokens, delay).await, SourceOutcome::Released),
            Settlement::Reject => (self.client.reject(&tokens).await, SourceOutcome::Poisoned),
        };
        match result {
            Ok(result) if result.is_complete() => self.source.count(outcome, 1),
            Ok(result) => {
                let code = result.failed_lock_tokens.first().map_or("", |failed| failed.error.code.as_str());
                // The lock expired first: the event comes again and the journal knows it.
                tracing::warn!(source = %self.source, %code, ?settlement, "the event's lock was lost before it was settled");
            }
            Err(error) => {
                tracing::warn!(source = %self.source, error = %error, ?settlement, "settling an event failed")
            }
        }
    }
}

/// A refused credential or a missing topic or subscription: retrying cannot help.
fn is_permanent(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Unauthorized | ErrorKind::NotFound)
}
