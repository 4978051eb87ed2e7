//! A recorder replica: the recorder example as a process on `--store`, with a webhook of its own.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_recording::emulator::eventgrid::{EventGridPublisher, RetryPolicy};

use acs_recording::emulator::Emulator;
use acs_recording::eventgrid::Schema;

use super::Backend;

const SECRET: &str = "replica-secret";

use crate::support::eventually;
pub(crate) use crate::support::process::recorder_binary;
use crate::support::process::{spawn_listening, Listening};

/// A running replica, killed when dropped; its output is read as it comes.
pub(crate) struct Replica {
    pub(crate) name: String,
    child: Option<Child>,
    addr: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    _scratch: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica on `backend` with leases of `lease_seconds`, and waits (bounded) until its webhook
    /// answers the validation handshake.
    pub(crate) async fn start(name: &str, emulator: &Emulator, backend: &Backend, lease_seconds: u64) -> Self {
        Self::start_with(name, emulator, backend, lease_seconds, &[], &[]).await
    }

    /// [`Replica::start`] with more arguments and environment variables.
    pub(crate) async fn start_with(
        name: &str,
        emulator: &Emulator,
        backend: &Backend,
        lease_seconds: u64,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let scratch = tempfile::tempdir().unwrap();
        let lease = lease_seconds.to_string();
        let mut command = Command::new(recorder_binary());
        command
            .args(["--listen", "127.0.0.1:0", "--webhook-secret", SECRET, "--no-progress", "--parallelism", "1"])
            .args(["--allow-host", &emulator.storage_authority(), "--store", &backend.url, "--lease-seconds", &lease])
            // Accepted beside --store, for local scratch: nothing is written there.
            .arg("--out")
            .arg(scratch.path())
            .envs(backend.env.iter().map(|(k, v)| (k, v)))
            .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
            .env("RUST_LOG", "warn,acs_recording::journal=info")
            .args(extra)
            .envs(env.iter().copied());
        let Listening { child, addr, stdout, stderr } = spawn_listening(command, &format!("replica {name}")).await;
        let replica = Self { name: name.to_owned(), child: Some(child), addr, stdout, stderr, _scratch: scratch };
        let publisher = &replica.publisher();
        eventually(Duration::from_secs(60), format!("the webhook of replica {name} comes up"), || async move {
            publisher.validate().await.ok()
        })
        .await;
        replica
    }

    /// Event Grid's publisher for this replica's webhook, one attempt per delivery.
    pub(crate) fn publisher(&self) -> EventGridPublisher {
        let once = RetryPolicy {
            delays: vec![Duration::from_millis(5)],
            max_attempts: 1,
            response_timeout: Duration::from_secs(10),
        };
        let url = format!("http://{}/api/events?code={SECRET}", self.addr);
        EventGridPublisher::new(&url, Schema::EventGrid).unwrap().with_retry(once)
    }

    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal with the shell's `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("sh").args(["-c", &format!("kill -{signal} {pid}")]).status().unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the process ends at once, in the middle of whatever it does.
    pub(crate) fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.take().expect("running").wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
