//! `--pull`: the recorder receives from an Event Grid namespace topic's event subscription (pull delivery) beside
//! (or instead of) the webhook, with the namespace key or the recorder's Entra identity.

use std::future::Future;
use std::time::Duration;

use acs_recording::credential::Credential;
use acs_recording::eventgrid::namespace::{NamespaceClient, NamespaceKey, ReleaseDelay, EVENTGRID_SCOPE};
use acs_recording::intake::pull::{PullOptions, PullSource};
use acs_recording::journal::Journal;
use acs_recording::recorder::Intake;
use acs_recording::signing::BearerTokenLayer;
use acs_recording::{BoxError, HttpClient};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tower::Layer;

/// What `--pull` and its options configure.
#[derive(Debug, Clone)]
pub(crate) struct PullSettings {
    /// `https://<namespace host>/topics/<topic>/eventsubscriptions/<subscription>`.
    pub(crate) url: String,
    /// `EVENTGRID_NAMESPACE_KEY`; without it the Entra identity of `--auth entra`.
    pub(crate) key: Option<String>,
    pub(crate) options: PullOptions,
}

impl PullSettings {
    /// The settings of the command line; `None` without `--pull`.
    pub(crate) fn new(
        url: Option<&str>,
        key: Option<&str>,
        lock_seconds: u64,
        release_delay: u32,
        max_events: u32,
    ) -> Option<Self> {
        let options = PullOptions {
            max_events,
            lock_duration: Duration::from_secs(lock_seconds.max(1)),
            release_delay: ReleaseDelay::from_secs(release_delay).unwrap_or_default(),
            ..PullOptions::default()
        };
        url.map(|url| Self { url: url.to_owned(), key: key.map(str::to_owned), options })
    }
}

/// `--pull-release-delay`: one of the five delays the service accepts.
pub(crate) fn parse_release_delay(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|secs| ReleaseDelay::from_secs(*secs).is_some())
        .ok_or_else(|| format!("`{value}` is not 0, 10, 60, 600 or 3600"))
}

/// The source, ready to run: a client with the key, or with the Entra identity's Event Grid tokens.
pub(crate) enum Puller {
    Key(PullSource<Client<Https, Full<Bytes>>>),
    Entra(PullSource<acs_recording::signing::BearerToken<Client<Https, Full<Bytes>>>>),
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

impl std::fmt::Debug for Puller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Puller {
    /// Checks the URL and the credential before anything listens.
    pub(crate) fn prepare(settings: &PullSettings, credential: &Credential) -> Result<Self, BoxError> {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        match (&settings.key, credential) {
            (Some(key), _) => {
                let client = NamespaceClient::from_url(client, &settings.url)?.with_key(NamespaceKey::new(key)?);
                Ok(Self::Key(PullSource::new(client).options(settings.options.clone())))
            }
            (None, Credential::Entra { credential, .. }) => {
                let plain = NamespaceClient::from_url((), &settings.url)?;
                let bearer = BearerTokenLayer::new(plain.endpoint().clone(), credential.clone()).scope(EVENTGRID_SCOPE);
                let client = NamespaceClient::from_url(bearer.layer(client), &settings.url)?;
                Ok(Self::Entra(PullSource::new(client).options(settings.options.clone())))
            }
            (None, _) => Err("--pull needs the namespace key in EVENTGRID_NAMESPACE_KEY, or --auth entra (the \
                              recorder's identity needs the EventGrid Data Receiver role on the subscription)"
                .into()),
        }
    }

    /// `pull:<topic>/<subscription>` and how it authenticates, for the start-up line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Key(source) => format!("{} (namespace key)", source.source()),
            Self::Entra(source) => format!("{} (Entra ID)", source.source()),
        }
    }

    /// Runs the source until `shutdown`; answers the shutdown the recorder should use (the original signal, or
    /// the source ending with an error that retrying cannot fix) and the source's task.
    pub(crate) fn start<J: Journal>(
        self,
        intake: Intake<J>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (impl Future<Output = ()> + Send + 'static, JoinHandle<Result<(), BoxError>>) {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (failed, failure) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut stopping = stopping;
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            let result = match self {
                Self::Key(source) => run(source, intake, stopped).await,
                Self::Entra(source) => run(source, intake, stopped).await,
            };
            if result.is_err() {
                let _ = failed.send(());
            }
            result
        });
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                Ok(()) = failure => eprintln!("the pull source stopped; shutting down"),
            }
            let _ = stop.send(true);
        };
        (shutdown, task)
    }
}

async fn run<S: HttpClient<Full<Bytes>>, J: Journal>(
    source: PullSource<S>,
    intake: Intake<J>,
    stopped: impl Future<Output = ()> + Send,
) -> Result<(), BoxError> {
    source.run(intake, stopped).await.map_err(Into::into)
}
