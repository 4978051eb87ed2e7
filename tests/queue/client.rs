//! The queue client against Azurite, which checks every Shared Key signature.

use std::time::Duration;

use acs_recording::credential::AccessKey;
use acs_recording::intake::queue::{ErrorKind, QueueClient, QueueCredential, QueueUrl};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::queue::{new_queue, url_of, Http};

#[tokio::test]
async fn a_request_signed_with_another_key_is_refused_with_403() {
    let queue = new_queue("wrong-key").await;
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let wrong = AccessKey::from_bytes(b"not the account key".to_vec());
    let url = QueueUrl::parse(&url_of(queue.url().queue())).unwrap();
    let stranger = QueueClient::new(http, url, QueueCredential::AccountKey(wrong));
    let error = stranger.receive(1, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!((error.kind(), error.http_status()), (ErrorKind::Status, Some(403)));
    assert!(error.to_string().starts_with(&format!("receiving messages on queue {} was refused", queue.url().queue())));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn put_receive_and_delete_keep_the_text_and_count_deliveries() {
    let queue = new_queue("round-trip").await;
    // Characters XML escapes, and text as long as a real event.
    let text = format!("{{\"a\":\"<&>\\\"'\",\"pad\":\"{}\"}}", "x".repeat(4000));
    queue.put(&text).await.unwrap();
    let first = queue.receive(32, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].text.as_str(), first[0].dequeue_count), (text.as_str(), 1));
    assert!(first[0].insertion_time.is_some());
    assert!(queue.receive(32, Duration::from_secs(1)).await.unwrap().is_empty(), "hidden while received");
    // Not deleted: it comes back after the visibility timeout, counted again, with a new pop receipt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let peeked = queue.peek().await.unwrap().expect("visible again");
    assert_eq!((peeked.id.as_str(), peeked.text.as_str()), (first[0].id.as_str(), text.as_str()));
    let second = queue.receive(32, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second[0].dequeue_count, 2);
    assert!(!queue.delete(&first[0]).await.unwrap(), "the first receipt is stale");
    assert!(queue.delete(&second[0]).await.unwrap());
    assert_eq!(queue.peek().await.unwrap(), None);
}

#[tokio::test]
async fn the_poison_queue_is_created_once_and_takes_text_as_it_is() {
    let queue = new_queue("poison").await;
    let poison = queue.poison_queue();
    poison.create_if_missing().await.unwrap();
    poison.create_if_missing().await.unwrap();
    poison.put("not base64 & <not json>").await.unwrap();
    let moved = poison.peek().await.unwrap().expect("a message");
    assert_eq!(moved.text, "not base64 & <not json>");
    assert_eq!(poison.url().queue(), format!("{}-poison", queue.url().queue()));
}
