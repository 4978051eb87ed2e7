//! The queue source's loop: receive a batch, admit each message's events, delete what is durable.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::Full;

use super::client::QueueClient;
use super::error::Error;
use super::message::decode_message;
use super::QueueMessage;
use crate::journal::Journal;
use crate::recorder::{AdmitError, Intake, Source, SourceKind, SourceOutcome};
use crate::recording::RecordingEvents;
use crate::HttpClient;

/// How a [`QueueSource`] reads its queue. `Default` gives the values below.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Messages asked for at once (1 to 32); default 32.
    pub batch_size: u8,
    /// How long a received message stays invisible to other receivers; a message not deleted by then comes back.
    /// Default 5 minutes: journaling a message takes milliseconds, so only a stalled replica holds one that long.
    pub visibility_timeout: Duration,
    /// A message whose processing failed on this many deliveries is moved to `<queue>-poison`; default 5.
    pub max_dequeue: u32,
    /// The wait after an empty receive, doubled after each one up to `max_idle_wait`; default 1 s.
    pub min_idle_wait: Duration,
    /// The longest wait between receives on an idle queue (or a queue that fails); default 30 s.
    pub max_idle_wait: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            visibility_timeout: Duration::from_secs(5 * 60),
            max_dequeue: 5,
            min_idle_wait: Duration::from_secs(1),
            max_idle_wait: Duration::from_secs(30),
        }
    }
}

/// Reads the events an Event Grid subscription delivers to a Storage queue into a recorder's
/// [`Intake`]; see the [module docs](super) for the rules.
#[derive(Debug)]
pub struct QueueSource<C> {
    client: QueueClient<C>,
    poison: QueueClient<C>,
    options: QueueOptions,
    source: Source,
}

/// What became of one message.
enum Outcome {
    Deleted,
    Left,
    Poisoned,
    Stopping,
    /// Left, and so will the rest of the batch be: the journal holds its maximum of open jobs.
    Full,
}

impl<C: HttpClient<Full<Bytes>>> QueueSource<C> {
    /// A source reading the queue of `client` with `options`.
    pub fn new(client: QueueClient<C>, options: QueueOptions) -> Self {
        let source = Source::new(SourceKind::StorageQueue, client.url().queue());
        Self { poison: client.poison_queue(), client, options, source }
    }

    /// The source its jobs record: `queue:<name>`.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Receives, admits and deletes messages until `shutdown` resolves (the message in hand is finished first;
    /// the rest of its batch comes back after the visibility timeout). Failures are logged and retried after a
    /// wait; this returns `Ok` once stopped.
    pub async fn run<J: Journal>(
        self,
        intake: Intake<J>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let mut shutdown = pin!(shutdown.fuse());
        let mut idle = self.options.min_idle_wait;
        let mut poison_ready = false;
        loop {
            let receive = self.client.receive(self.options.batch_size, self.options.visibility_timeout);
            let received = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                received = receive => received,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(queue = %self.client.url(), error = %error, "receiving from the queue failed; trying again");
                    if wait(&mut shutdown, idle).await {
                        return Ok(());
                    }
                    idle = (idle * 2).min(self.options.max_idle_wait);
                    continue;
                }
            };
            if messages.is_empty() {
                self.source.oldest_message_age(Duration::ZERO);
                if wait(&mut shutdown, idle).await {
                    return Ok(());
                }
                idle = (idle * 2).min(self.options.max_idle_wait);
                continue;
            }
            idle = self.options.min_idle_wait;
            self.source.count(SourceOutcome::Received, messages.len());
            let mut full = false;
            for message in messages {
                if shutdown.as_mut().now_or_never().is_some() {
                    return Ok(());
                }
                match self.process(&intake, &message, &mut poison_ready).await {
                    Outcome::Deleted => self.source.count(SourceOutcome::Acknowledged, 1),
                    Outcome::Poisoned => self.source.count(SourceOutcome::Poisoned, 1),
                    Outcome::Left => self.source.count(SourceOutcome::Released, 1),
                    Outcome::Stopping => return Ok(()),
                    Outcome::Full => {
                        self.source.count(SourceOutcome::Released, 1);
                        full = true;
                        break;
                    }
                }
            }
            if full {
                // The rest of the batch comes back after the visibility timeout; ask again after a wait.
                if wait(&mut shutdown, self.options.max_idle_wait).await {
                    return Ok(());
                }
                continue;
            }
            self.measure_oldest().await;
        }
    }

    /// Admits (or rejects) one message, then deletes it; on failure leaves it, or moves it aside once it has
    /// failed `max_dequeue` times.
    async fn process<J: Journal>(
        &self,
        intake: &Intake<J>,
        message: &QueueMessage,
        poison_ready: &mut bool,
    ) -> Outcome {
        let admitted = match decode_message(&message.text) {
            Ok(events) => intake.admit_from(&self.source, &RecordingEvents::from_events(events)).await.map(drop),
            Err(reason) => intake.reject_message(&self.source, message.text.as_bytes(), &reason.0).await.map(drop),
        };
        match admitted {
            Ok(()) => self.delete(message).await,
            Err(error) if error.is_shutting_down() => Outcome::Stopping,
            // Backpressure is not the message's fault: it is never poisoned for it, and the batch waits.
            Err(error) if error.is_full() => {
                tracing::warn!(queue = %self.client.url(), error = %error.detail(),
                    "the journal holds its maximum of open jobs; the queue's messages wait");
                Outcome::Full
            }
            Err(error) if message.dequeue_count >= self.options.max_dequeue => {
                self.move_to_poison(message, &error, poison_ready).await
            }
            Err(error) => {
                tracing::warn!(queue = %self.client.url(), message_id = %message.id, dequeue_count = message.dequeue_count,
                    error = %error.detail(), "message not admitted; it comes back after the visibility timeout");
                Outcome::Left
            }
        }
    }

    async fn delete(&self, message: &QueueMessage) -> Outcome {
        match self.client.delete(message).await {
            Ok(true) => Outcome::Deleted,
            // Its events are durable: whoever holds it now admits a duplicate and deletes it.
            Ok(false) => Outcome::Left,
            Err(error) => {
                tracing::warn!(queue = %self.client.url(), message_id = %message.id, error = %error,
                    "deleting an admitted message failed; it comes back and is a duplicate then");
                Outcome::Left
            }
        }
    }

    async fn move_to_poison(&self, message: &QueueMessage, error: &AdmitError, ready: &mut bool) -> Outcome {
        if !*ready {
            match self.poison.create_if_missing().await {
                Ok(()) => *ready = true,
                Err(failed) => {
                    tracing::warn!(queue = %self.poison.url(), error = %failed, "creating the poison queue failed");
                    return Outcome::Left;
                }
            }
        }
        if let Err(failed) = self.poison.put(&message.text).await {
            tracing::warn!(queue = %self.poison.url(), error = %failed, "moving a message to the poison queue failed");
            return Outcome::Left;
        }
        tracing::error!(queue = %self.client.url(), message_id = %message.id, dequeue_count = message.dequeue_count,
            error = %error.detail(), poison = %self.poison.url(), "message failed too often; moved to the poison queue");
        match self.delete(message).await {
            Outcome::Deleted => Outcome::Poisoned,
            other => other,
        }
    }

    /// Sets the oldest-message gauge from the next visible message's insertion time.
    async fn measure_oldest(&self) {
        match self.client.peek().await {
            Ok(oldest) => {
                let age = oldest
                    .and_then(|message| message.insertion_time)
                    .and_then(|inserted| SystemTime::now().duration_since(inserted).ok())
                    .unwrap_or_default();
                self.source.oldest_message_age(age);
            }
            Err(error) => tracing::debug!(queue = %self.client.url(), error = %error, "peeking at the queue failed"),
        }
    }
}

/// Sleeps `duration` unless `shutdown` resolves first; answers whether it did.
async fn wait<F: Future<Output = ()> + futures_util::future::FusedFuture>(
    shutdown: &mut std::pin::Pin<&mut F>,
    duration: Duration,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
