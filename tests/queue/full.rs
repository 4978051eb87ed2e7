//! A journal at its maximum of open jobs is backpressure: the queue's messages wait, and none is poisoned for it.

use std::time::Duration;

use acs_recording::credential::ConnectionString;
use acs_recording::download::sink::DirectorySink;
use acs_recording::emulator::eventgrid::recording_file_status_updated;
use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::eventgrid::{Events, Schema};
use acs_recording::intake::queue::{QueueOptions, QueueSource};
use acs_recording::journal::{Journal, MemoryJournal};
use acs_recording::recorder::Recorder;
use acs_recording::recording::RecordingEvents;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::queue::{base64, client_of, event_grid, new_queue, wait_for_message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_leaves_messages_waiting_and_poisons_none() {
    let emulator = Emulator::start().await.unwrap();
    let cs: ConnectionString = emulator.connection_string();
    let downloads = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let out = tempfile::tempdir().unwrap();
    // Not run: its one open job stays open, so the journal stays full.
    let recorder =
        Recorder::builder(&cs, downloads, DirectorySink::new(out.path()), MemoryJournal::new()).max_pending(1).build();
    let first = recording_file_status_updated(&emulator.storage().record(RecordingSpec::new("call-1", 10_000)));
    let events = Events::from_slice(Schema::EventGrid, event_grid(&first).as_bytes()).unwrap();
    recorder.intake().admit(&RecordingEvents::from_events(events)).await.unwrap();

    let queue = new_queue("full").await;
    let second = recording_file_status_updated(&emulator.storage().record(RecordingSpec::new("call-2", 10_000)));
    let text = base64(&event_grid(&second));
    queue.put(&text).await.unwrap();
    let mut options = QueueOptions::default();
    options.visibility_timeout = Duration::from_secs(1);
    options.max_dequeue = 1;
    options.max_idle_wait = Duration::from_secs(1);
    let source = QueueSource::new(client_of(queue.url().queue()), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(source.run(recorder.intake(), async {
        let _ = stopped.await;
    }));
    // Refused on every delivery past the maximum, and still in the queue.
    let again = wait_for_message(&queue, "the message comes back", |message| message.dequeue_count >= 3).await;
    assert_eq!(again.text, text);
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert!(queue.poison_queue().peek().await.is_err(), "no poison queue");
    assert_eq!(recorder.journal().list().await.unwrap().len(), 1);
}
