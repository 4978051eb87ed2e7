//! `--queue`: Storage queues an Event Grid subscription delivers the ACS events to, read beside (or instead of) the
//! webhook.

use std::time::Duration;

use acs_recording::credential::AccessKey;
use acs_recording::intake::queue::{QueueClient, QueueCredential, QueueOptions, QueueSource, QueueUrl};
use acs_recording::BoxError;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::entra::EntraCredential;

/// The queue sources' HTTP client: https, and plain http for loopback (Azurite), which `QueueUrl` alone accepts.
pub(crate) type QueueHttp = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What the command line says about queues.
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    /// `--queue`, as given (a SAS in them is never printed).
    pub(crate) urls: Vec<String>,
    pub(crate) visibility_timeout: Duration,
    pub(crate) max_dequeue: u32,
    /// `--auth entra`: queues without a SAS take tokens of this identity rather than the account key.
    pub(crate) entra: Option<EntraCredential>,
}

impl QueueSettings {
    /// One source per `--queue`. Each authenticates with the SAS in its URL; else, under `--auth entra`, a
    /// Microsoft Entra token; else the account key in `AZURE_STORAGE_ACCOUNT_KEY`.
    pub(crate) fn sources(&self) -> Result<Vec<QueueSource<QueueHttp>>, BoxError> {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let http: QueueHttp = Client::builder(TokioExecutor::new()).build(https);
        let mut options = QueueOptions::default();
        options.visibility_timeout = self.visibility_timeout;
        options.max_dequeue = self.max_dequeue;
        let mut sources = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let url = QueueUrl::parse(url)?;
            let credential = if url.has_sas() {
                QueueCredential::Sas
            } else if let Some(kind) = self.entra {
                QueueCredential::Entra(crate::entra::credential(kind)?)
            } else {
                let key = std::env::var("AZURE_STORAGE_ACCOUNT_KEY").map_err(|_| {
                    format!("--queue {url}: no credential: put a SAS in the URL, set AZURE_STORAGE_ACCOUNT_KEY, or give --auth entra")
                })?;
                QueueCredential::AccountKey(AccessKey::from_base64(&key)?)
            };
            sources.push(QueueSource::new(QueueClient::new(http.clone(), url, credential), options.clone()));
        }
        Ok(sources)
    }
}
