//! Queue requests with a Microsoft Entra token: a loopback server stands in for the queue service (Azurite takes
//! no Entra tokens) and records what it was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_recording::intake::queue::{QueueClient, QueueCredential, QueueUrl, STORAGE_SCOPE};
use axum::http::HeaderMap;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::queue::Http;
use crate::support::TestServer;

/// Hands out `storage-token` for the storage scope, and counts the requests.
#[derive(Debug, Default)]
struct StorageCredential {
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TokenCredential for StorageCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        self.asked.lock().unwrap().extend(scopes.iter().map(|scope| scope.to_string()));
        Ok(AccessToken::new("storage-token", OffsetDateTime::now_utc() + Duration::from_secs(3600)))
    }
}

#[tokio::test]
async fn requests_carry_a_bearer_token_for_the_storage_scope_and_no_shared_key() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/acct/acs-events/messages",
        axum::routing::get(move |headers: HeaderMap| {
            record.lock().unwrap().push(headers);
            async { "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList />" }
        }),
    );
    let server = TestServer::axum(app).await;
    let credential = Arc::new(StorageCredential::default());
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let url = QueueUrl::parse(&format!("http://{}/acct/acs-events", server.addr)).unwrap();
    let client = QueueClient::new(http, url, QueueCredential::Entra(credential.clone()));
    for _ in 0..2 {
        assert!(client.receive(32, Duration::from_secs(30)).await.unwrap().is_empty());
    }
    assert_eq!(*credential.asked.lock().unwrap(), [STORAGE_SCOPE], "one token, cached, for the storage scope");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for headers in seen.iter() {
        assert_eq!(headers["authorization"], "Bearer storage-token");
        assert_eq!(headers["x-ms-version"], "2021-12-02");
        assert!(headers.contains_key("x-ms-date"));
    }
    assert!(!format!("{client:?}").contains("storage-token"));
}
