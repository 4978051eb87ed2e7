//! The recorder: receives ACS recording events through Event Grid and downloads every recording, losing none.
//!
//! With `--connection-string` (or `ACS_CONNECTION_STRING`) it serves the webhook for a real Event Grid
//! subscription until Ctrl-C or SIGTERM (`serve.rs`, a few dozen lines over the library's `Recorder`). Every
//! accepted event is journaled in `<out>/.acs-recording` before the webhook answers 200, so restarting the same
//! command line resumes everything that was not finished.
//!
//! With no connection string it runs the same service against the embedded emulator and exits (`demo.rs`): a
//! call's recording is started, paused, resumed and stopped through Call Automation, and what the emulator then
//! announces on Event Grid is downloaded and checked.
//!
//! With `--store az://<container>/<prefix>` (or `file:///<path>`) the recordings and the journal go to object
//! storage, shared by every replica started with the same store: each chunk is downloaded once, and the jobs of a
//! replica that dies are taken over once its leases (`--lease-seconds`) expire.
//!
//! With `--pull https://<namespace host>/topics/<topic>/eventsubscriptions/<subscription>` (`pull.rs`) the recorder
//! also receives the events from an Event Grid namespace topic (pull delivery, the key in
//! `EVENTGRID_NAMESPACE_KEY` or the `--auth entra` identity): no public endpoint is needed, and without a webhook
//! option no webhook is served. `--demo-via pull` runs the demo that way.
//!
//! With `--auth entra` the downloads authenticate with a Microsoft Entra ID token instead of the access key
//! (`entra.rs`): the managed identity of the host by default, or a developer's Azure CLI sign-in with
//! `--entra-credential developer`; the resource comes from `--endpoint`. `--webhook-entra-tenant` and
//! `--webhook-entra-audience` require Event Grid's Entra token on every delivery. `--cloud usgov` (or `china`)
//! sets the storage hosts, the Event Grid origin and the Entra authority of a sovereign cloud.
//!
//! ```sh
//! cargo run --example recorder                      # the demo
//! cargo run --example recorder -- --auth entra --endpoint https://<resource>.communication.azure.com/
//! cargo run --example recorder -- --help
//! cargo run --example recorder -- status            # open, failed and missing jobs, with their reasons
//! cargo run --example recorder -- retry <job id>    # a failed job, again
//! cargo run --example recorder -- record start --server-call-id <id>   # prints {"recordingId":..,"recordingState":..}
//! cargo run --example recorder -- record stop <recording id>
//! cargo run --example recorder -- replay-dead-letters az://<container>/<SUBSCRIPTION NAME>
//! ```
//!
//! `replay-dead-letters` journals and downloads the recording events Event Grid dead-lettered to a container (after
//! an outage longer than its retries), then prints what it did; `--dead-letters <URL>` watches such a container
//! while serving.
//!
//! `record start|pause|resume|stop|state` drive a call's recording through Call Automation (`record.rs`), with
//! the same connection string, `--auth` and `--allow-host` as the service.

mod demo;
mod entra;
mod listen;
mod progress;
mod pull;
mod queue;
mod record;
mod replay;
mod serve;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use acs_recording::cloud::AzureCloud;
use acs_recording::credential::{ConnectionString, Credential, Endpoint};
use acs_recording::download::ParallelPolicy;
use acs_recording::eventgrid::Schema;
use acs_recording::BoxError;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use crate::entra::EntraCredential;

/// Receive Azure Communication Services recording events and download every recording.
///
/// Without a connection string, runs a complete demo against the embedded ACS and Event Grid emulator and exits.
/// With one, serves the Event Grid webhook for `Microsoft.Communication.RecordingFileStatusUpdated` events until
/// Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// ACS connection string (`endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`); runs
    /// the real service instead of the demo.
    #[arg(long, global = true, env = "ACS_CONNECTION_STRING", hide_env_values = true)]
    connection_string: Option<String>,

    /// How download requests authenticate: `key` signs them with the connection string's access key; `entra`
    /// sends a Microsoft Entra ID token of the recorder's identity (which needs a role on the ACS resource).
    #[arg(long, global = true, value_enum, default_value_t = Auth::Key)]
    auth: Auth,

    /// The ACS endpoint (`https://<resource>.communication.azure.com/`) for `--auth entra` [default: the
    /// connection string's].
    #[arg(long, global = true, env = "ACS_ENDPOINT")]
    endpoint: Option<String>,

    /// The identity of `--auth entra`: `managed` (the host's managed identity) or `developer` (the Azure CLI's or
    /// Azure Developer CLI's sign-in).
    #[arg(long, global = true, value_enum, default_value_t = EntraCredential::Managed)]
    entra_credential: EntraCredential,

    /// Require a Microsoft Entra token from this tenant (its directory id) on every delivery, as an Entra-secured
    /// Event Grid subscription sends; needs `--webhook-entra-audience`.
    #[arg(long, value_name = "TENANT_ID", requires = "webhook_entra_audiences")]
    webhook_entra_tenant: Option<String>,

    /// The webhook application's id or id URI that delivery tokens must be issued for; repeatable.
    #[arg(long = "webhook-entra-audience", value_name = "APP_ID_OR_URI", requires = "webhook_entra_tenant")]
    webhook_entra_audiences: Vec<String>,

    /// The Azure cloud of the ACS resource: `public`, `usgov` or `china`. Sets the recording storage hosts, the
    /// Event Grid origin granted in the CloudEvents handshake, and the Entra authority, issuers and Event Grid
    /// application of `--webhook-entra-tenant` [default: the storage hosts of every cloud, every Event Grid
    /// origin, the public cloud's Entra].
    #[arg(long, global = true, value_name = "CLOUD")]
    cloud: Option<AzureCloud>,

    /// Address the webhook (and `/healthz`, `/readyz`) listens on [default: 0.0.0.0:8080; the demo uses a free
    /// loopback port].
    #[arg(long)]
    listen: Option<SocketAddr>,

    /// Path of the webhook route (the subscription's endpoint URL ends with it).
    #[arg(long, default_value = "/api/events")]
    path: String,

    /// Secret every delivery must carry, in the query parameter `code` or the header `x-webhook-secret`
    /// (put it in the subscription's endpoint URL: `https://host/api/events?code=<secret>`).
    #[arg(long, env = "ACS_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,

    /// Serve the webhook without --webhook-secret or --webhook-entra-tenant: anyone who reaches it can make the
    /// recorder download and fill its journal. Without a delivery check the recorder refuses to start unless this
    /// says so.
    #[arg(long)]
    unauthenticated_webhook: bool,

    /// Directory recordings are written to, as `<dir>/<call id>/<index>-<document id>.<ext>` plus metadata.
    #[arg(long, global = true, default_value = "./recordings")]
    out: PathBuf,

    /// Object storage for the recordings and the journal instead of `--out`: `az://<container>/<prefix>` (Azure
    /// settings from the environment: AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, or
    /// AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL for Azurite) or `file:///<absolute path>`.
    /// Replicas given the same store share every job and download each chunk once.
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,

    /// With --store: how long a replica's claim on a job lasts without renewal; a replica that dies holds its
    /// jobs this long before another one takes them over.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    lease_seconds: u64,

    /// Directory of the journal [default: `<out>/.acs-recording`].
    #[arg(long, global = true)]
    journal: Option<PathBuf>,

    /// Another host (`host` or `host:port`) that may receive signed download requests, besides the ACS
    /// endpoint and Azure's recording storage; repeatable. Plain http and IP literals are accepted only for
    /// hosts named here.
    #[arg(long = "allow-host", global = true, value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,

    /// Recordings downloaded at the same time.
    #[arg(long, alias = "concurrency", default_value_t = 4)]
    workers: usize,

    /// Delete each chunk from ACS storage once it is safely on disk.
    #[arg(long)]
    delete_after_download: bool,

    /// Download recordings that ACS exported to your own storage account too (bring your own storage); by
    /// default their jobs only record where they are. A failed export is always downloaded.
    #[arg(long)]
    download_exported: bool,

    /// Open jobs the journal may hold; a delivery past it gets 503 and Event Grid retries.
    #[arg(long, alias = "queue-capacity", default_value_t = 10_000)]
    max_pending: usize,

    /// Connections served at once; more wait in the listen backlog. Idle ones are closed after 10 s without a
    /// request.
    #[arg(long, default_value_t = 16_384)]
    max_connections: usize,

    /// Requests in flight for one large chunk (parallel ranges); 1 downloads every chunk as one stream.
    #[arg(long, default_value_t = 8)]
    parallelism: usize,

    /// Size in bytes of each range of a large chunk after the first.
    #[arg(long, default_value_t = 8 << 20)]
    part_size: u64,

    /// Chunks larger than this many bytes are fetched in parallel ranges; the first request asks for this many.
    #[arg(long, default_value_t = 32 << 20)]
    parallel_threshold: u64,

    /// Bytes that the parallel ranges of all workers together may hold in memory.
    #[arg(long, value_name = "BYTES", default_value_t = acs_recording::download::DEFAULT_MEMORY_BUDGET)]
    memory_budget: u64,

    /// A first response at least this fast (bytes per second) keeps a large chunk to two requests at a time; 0 always
    /// uses --parallelism.
    #[arg(long, default_value_t = acs_recording::download::ParallelPolicy::default().fast_stream.unwrap_or_default())]
    fast_stream: u64,

    /// Watch a dead-letter container (`az://<container>/<prefix>`, Azure settings as for --store, or
    /// `file:///<absolute path>`) and journal the recording events Event Grid dead-lettered there.
    #[arg(long, value_name = "URL")]
    dead_letters: Option<String>,

    /// With --dead-letters: seconds between two listings of the container.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    dead_letters_interval: u64,

    /// A Storage queue that an Event Grid subscription delivers the recording events to, read with outbound HTTPS
    /// only; repeatable. `https://<account>.queue.core.windows.net/<queue>` (a SAS may follow; else the account key
    /// from AZURE_STORAGE_ACCOUNT_KEY, or `--auth entra`), or `http://127.0.0.1:10001/devstoreaccount1/<queue>` for
    /// Azurite. Given only pull sources and no delivery check, the recorder serves no webhook route.
    #[arg(long = "queue", value_name = "QUEUE_URL")]
    queues: Vec<String>,

    /// With --queue: how long a received message stays hidden from other replicas; one not deleted by then (its
    /// replica died) comes back.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    queue_visibility_timeout: u64,

    /// With --queue: a message whose events fail to be journaled on this many deliveries moves to `<queue>-poison`.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    queue_max_dequeue: u32,

    /// Serve Prometheus metrics on this address (`http://<addr>/metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,

    /// Hide the progress bars.
    #[arg(long)]
    no_progress: bool,

    /// Receive recording events from an Event Grid namespace topic's event subscription (pull delivery, no
    /// public endpoint needed): `https://<namespace host>/topics/<topic>/eventsubscriptions/<subscription>`. The
    /// key comes from EVENTGRID_NAMESPACE_KEY; without it `--auth entra` sends the identity's Event Grid token.
    /// Plain http for loopback hosts only.
    #[arg(long, value_name = "URL")]
    pull: Option<String>,

    /// The namespace (or topic) access key of --pull.
    #[arg(long, env = "EVENTGRID_NAMESPACE_KEY", hide_env_values = true, hide = true)]
    namespace_key: Option<String>,

    /// With --pull: the event subscription's lock duration in seconds; locks are renewed every half of it while
    /// an event is journaled.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=300))]
    pull_lock_seconds: u64,

    /// With --pull: seconds an event waits before it comes again after a failed admission: 0, 10, 60, 600 or 3600.
    #[arg(long, default_value_t = 10, value_parser = pull::parse_release_delay)]
    pull_release_delay: u32,

    /// With --pull: the most events one receive asks for (1-100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pull_batch: u32,

    /// Demo: chunks in the demo recording.
    #[arg(long, default_value_t = 3)]
    demo_chunks: u64,

    /// Demo: chunk size limit in bytes (ACS uses 1.5 GB).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    demo_chunk_size: u64,

    /// Demo: Event Grid schema of the subscription, `eventgrid` or `cloudevents`.
    #[arg(long, default_value = "eventgrid", value_parser = acs_recording::emulator::eventgrid::parse_schema)]
    demo_schema: Schema,

    /// Demo: serve the storage without faults (by default it answers 503 while the recording is stored, a
    /// connection drops mid-chunk and a chunk answers 503 twice, to show the resume and the retries).
    #[arg(long)]
    demo_no_faults: bool,

    /// Demo: how the recording's event reaches the recorder: `webhook` (Event Grid pushes it, twice) or `pull`
    /// (the recorder receives it from an Event Grid namespace topic, published there twice).
    #[arg(long, value_enum, default_value_t = demo::Via::Webhook)]
    demo_via: demo::Via,
}

/// How download requests to ACS authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Auth {
    /// HMAC-SHA256 with the connection string's access key.
    Key,
    /// A Microsoft Entra ID bearer token.
    Entra,
}

/// What the real mode downloads with; `None` runs the demo.
#[derive(Debug)]
enum Target {
    Key(ConnectionString),
    Entra { endpoint: Endpoint, credential: EntraCredential },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the journal's pending, running, failed and rejected jobs with their reasons.
    Status {
        /// Done jobs too.
        #[arg(long)]
        all: bool,
    },
    /// Make a failed job pending again (with the recorder stopped); it downloads on the next start.
    Retry {
        /// The job id, as `status` prints it.
        job: String,
    },
    /// Journal the recording events Event Grid dead-lettered (`az://<container>/<prefix>` or `file:///<path>`),
    /// download them, and print what was done; blobs are marked processed, so a rerun reads only new ones.
    ReplayDeadLetters {
        /// The dead-letter container and prefix, or a local copy of it.
        #[arg(value_name = "URL")]
        url: String,
    },
    /// Start, pause, resume, stop or read a call's recording through Call Automation; prints one JSON line.
    Record {
        #[command(subcommand)]
        command: record::RecordCommand,
    },
}

impl Args {
    fn settings(&self) -> serve::Settings {
        serve::Settings {
            out: self.out.clone(),
            journal: self.journal_dir(),
            path: self.path.clone(),
            webhook_secret: self.webhook_secret.clone(),
            webhook_entra: self
                .webhook_entra_tenant
                .clone()
                .map(|tenant| (tenant, self.webhook_entra_audiences.clone())),
            cloud: self.cloud,
            allow_hosts: self.allow_hosts.clone(),
            workers: self.workers.max(1),
            max_pending: self.max_pending,
            max_connections: self.max_connections,
            delete_after_download: self.delete_after_download,
            download_exported: self.download_exported,
            progress: !self.no_progress,
            metrics: self.metrics,
            parallel: (self.parallelism > 1)
                .then(|| ParallelPolicy::new(self.parallel_threshold, self.part_size, self.parallelism))
                .map(|policy| policy.fast_stream((self.fast_stream > 0).then_some(self.fast_stream))),
            memory_budget: self.memory_budget,
            store: self.store.clone(),
            lease: std::time::Duration::from_secs(self.lease_seconds),
            unauthenticated_webhook: self.unauthenticated_webhook,
            dead_letters: self
                .dead_letters
                .clone()
                .map(|url| (url, std::time::Duration::from_secs(self.dead_letters_interval))),
            queues: queue::QueueSettings {
                urls: self.queues.clone(),
                visibility_timeout: std::time::Duration::from_secs(self.queue_visibility_timeout),
                max_dequeue: self.queue_max_dequeue,
                entra: (self.auth == Auth::Entra).then_some(self.entra_credential),
            },
            pull: pull::PullSettings::new(
                self.pull.as_deref(),
                self.namespace_key.as_deref(),
                self.pull_lock_seconds,
                self.pull_release_delay,
                self.pull_batch,
            ),
        }
    }

    /// The real mode's resource and authentication, or `None` for the demo.
    fn target(&self) -> Result<Option<Target>, BoxError> {
        let connection_string = self.connection_string.as_deref().map(ConnectionString::parse).transpose()?;
        match (self.auth, connection_string) {
            (Auth::Key, Some(connection_string)) => Ok(Some(Target::Key(connection_string))),
            (Auth::Key, None) => Ok(None),
            (Auth::Entra, connection_string) => {
                let endpoint = match (&self.endpoint, connection_string) {
                    (Some(endpoint), _) => Endpoint::parse(endpoint)?,
                    (None, Some(connection_string)) => connection_string.endpoint().clone(),
                    (None, None) => {
                        return Err(
                            "--auth entra needs the ACS endpoint: give --endpoint (or a connection string)".into()
                        )
                    }
                };
                Ok(Some(Target::Entra { endpoint, credential: self.entra_credential }))
            }
        }
    }

    /// What the real mode and `record` authenticate with; an error for the demo's "no connection string".
    fn credential(&self) -> Result<Credential, BoxError> {
        match self.target()? {
            Some(Target::Key(connection_string)) => Ok(Credential::from(connection_string)),
            Some(Target::Entra { endpoint, credential }) => {
                Ok(Credential::entra(endpoint, entra::credential(credential)?))
            }
            None => Err("no connection string: give --connection-string (or ACS_CONNECTION_STRING), or --auth entra \
                         with --endpoint"
                .into()),
        }
    }

    fn journal_dir(&self) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| self.out.join(".acs-recording"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal();
    let args = Args::parse();
    // `record` reports its failure in one line; its retries show with RUST_LOG=warn.
    let quiet = matches!(args.command, Some(Command::Record { .. }));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_env_filter(env_filter(quiet)).init();
    let result = match &args.command {
        Some(Command::Status { all }) => match &args.store {
            Some(url) => status::status_in_store(url, *all).await,
            None => status::status(&args.journal_dir(), *all).await,
        }
        .map(|()| ExitCode::SUCCESS),
        Some(Command::Retry { job }) => match &args.store {
            Some(url) => status::retry_in_store(url, job).await,
            None => status::retry(&args.journal_dir(), job).await,
        }
        .map(|()| ExitCode::SUCCESS),
        Some(Command::ReplayDeadLetters { url }) => match args.credential() {
            Ok(credential) => replay::run(&args.settings(), credential, url).await,
            Err(error) => Err(error),
        },
        Some(Command::Record { command }) => match args.credential() {
            Ok(credential) => match serve::allow_list(args.cloud, &args.allow_hosts) {
                Ok(allow) => record::run(command, credential, allow).await.map(|()| ExitCode::SUCCESS),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        },
        None => match args.target() {
            Ok(Some(_)) => real(&args).await,
            Ok(None) => demo(&args).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Each message along the chain says its own part once: print them all.
            let mut line = format!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                line = format!("{line}: {cause}");
                source = cause.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

fn env_filter(quiet: bool) -> tracing_subscriber::EnvFilter {
    let default = if quiet { "error" } else { "warn" };
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

async fn real(args: &Args) -> Result<ExitCode, BoxError> {
    let signing = args.credential()?;
    let settings = args.settings();
    // Queues are checked before anything listens; they are built again where the journal's type is known.
    settings.queues.sources()?;
    if !settings.pull_sources()
        && settings.webhook_secret.is_none()
        && settings.webhook_entra.is_none()
        && !args.unauthenticated_webhook
    {
        return Err("no delivery check: give --webhook-secret (or ACS_WEBHOOK_SECRET) or --webhook-entra-tenant, or \
                    --unauthenticated-webhook to serve an open webhook on purpose"
            .into());
    }
    // Configuration errors (an Entra tenant or audience that cannot work) come before anything listens.
    let webhook = serve::webhook_layer(&settings)?;
    if let Some(pull) = &settings.pull {
        pull::Puller::prepare(pull, &signing)?;
    }
    if let Some(addr) = settings.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new().with_http_listener(addr).install()?;
    }
    let listen = args.listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)));
    let listener = TcpListener::bind(listen).await?;
    let guard = match (&settings.webhook_secret, &settings.webhook_entra) {
        (Some(_), Some((tenant, _))) => format!(" (deliveries must carry the secret and an Entra token of {tenant})"),
        (Some(_), None) => " (deliveries must carry the secret)".to_owned(),
        (None, Some((tenant, _))) => format!(" (deliveries must carry an Entra token of {tenant})"),
        (None, None) => String::new(),
    };
    let route = if settings.webhook_route() { settings.path.as_str() } else { "/healthz (no webhook route)" };
    println!(
        "recorder for {} ({}) listening on http://{}{route}{guard}; {}{}",
        signing.endpoint(),
        serve::describe(&signing),
        listener.local_addr()?,
        settings.storage(),
        settings.describe_pull_sources(),
    );
    if settings.webhook_route() && settings.webhook_secret.is_none() && settings.webhook_entra.is_none() {
        eprintln!(
            "warning: --unauthenticated-webhook: anyone who can reach the webhook can make the recorder download"
        );
    }
    let shutdown = async {
        shutdown_signal().await;
        println!(
            "shutting down: no new deliveries; finishing the downloads already accepted (Ctrl-C again to stop at once)"
        );
        tokio::spawn(async {
            shutdown_signal().await;
            eprintln!("stopped: accepted jobs and partial downloads resume on the next start");
            std::process::exit(130);
        });
    };
    serve::run(&settings, signing, webhook, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: &Args) -> Result<ExitCode, BoxError> {
    println!("No connection string: running the demo on the embedded ACS and Event Grid emulator.");
    let demo = demo::Demo {
        chunks: args.demo_chunks.max(1),
        chunk_size: args.demo_chunk_size.max(64 * 1024),
        schema: args.demo_schema,
        faults: !args.demo_no_faults,
        via: args.demo_via,
    };
    let report = demo::run(args.settings(), demo.clone()).await?;

    println!();
    match demo.via {
        demo::Via::Webhook => println!("webhook validated with {} handshake", report.handshakes),
        demo::Via::Pull => println!("pulled from the namespace topic (no webhook, no handshake)"),
    }
    println!(
        "deliveries        {} of the recording's event, answered {}",
        report.deliveries.len(),
        report.deliveries.join(", ")
    );
    println!("jobs journaled    {} (the redelivery of the same event was recognised)", report.jobs);
    println!("job               {} {} after {} attempt(s)", report.job.id, report.job.state, report.job.attempts);
    println!();
    println!("{:>5}  {:<40} {:>10}  {:<16} file", "chunk", "document", "bytes", "sha-256");
    for (chunk, ok) in report.job.chunks.iter().zip(&report.verified) {
        println!(
            "{:>5}  {:<40} {:>10}  {:<16} {}{}",
            chunk.index,
            chunk.document_id,
            chunk.bytes.unwrap_or(0),
            chunk.sha256.map_or("-".to_owned(), |sha| sha.to_string()[..16].to_owned()),
            chunk.location.as_deref().unwrap_or("-"),
            if *ok { "" } else { "  <-- SHA-256 MISMATCH" },
        );
    }
    let bytes = report.job.bytes_stored();
    let seconds = report.elapsed.as_secs_f64().max(1e-9);
    println!();
    println!(
        "{} chunks, {} bytes in {:.2} s ({:.1} MB/s); storage served {} content bytes; every SHA-256 {}",
        report.job.chunks.len(),
        bytes,
        seconds,
        bytes as f64 / seconds / 1e6,
        report.content_bytes_served,
        if report.all_verified() { "matches the emulator" } else { "did NOT match" },
    );
    println!("files are under {}", args.out.display());
    let handshakes = if demo.via == demo::Via::Pull { 0 } else { 1 };
    Ok(
        if report.all_verified() && report.handshakes == handshakes && report.jobs == 1 && report.deliveries.len() == 2
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
