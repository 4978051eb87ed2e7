//! The recorder example as a process: finding its binary, starting it on a free port, driving and reading it.
// A prelude for the recorder binary's modules, which glob-import it; the other binaries mount it unused.
#![allow(unused_imports)]

pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::{Child, Command, Stdio};
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::{Duration, Instant};

pub(crate) use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, OutgoingEvent, RetryPolicy,
};

pub(crate) use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
pub(crate) use acs_recording::eventgrid::Schema;
pub(crate) use acs_recording::journal::{ChunkState, FileJournal, Job, JobId, JobState, Journal};
pub(crate) use sha2::{Digest, Sha256};

pub(crate) const SECRET: &str = "process-secret";

pub(crate) use super::emulator::served;
pub(crate) use super::eventually;
pub(crate) use super::process::{recorder_binary, spawn_listening, Listening};

/// A running recorder process, killed if the test fails before it stops by itself. Its output is read as it comes
/// (a full pipe would stall it) and kept for the test.
pub(crate) struct Recorder {
    pub(crate) child: Option<Child>,
    pub(crate) addr: String,
    pub(crate) stdout: Arc<Mutex<String>>,
    pub(crate) stderr: Arc<Mutex<String>>,
}

impl Recorder {
    /// Starts the recorder with the command line every start of a test uses (on a port the system picks), and
    /// waits until its webhook answers the validation handshake (bounded).
    pub(crate) async fn start(emulator: &Emulator, out: &Path) -> Self {
        Self::start_with(emulator, out, &[]).await
    }

    pub(crate) async fn start_with(emulator: &Emulator, out: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(emulator, out, extra, &[]).await
    }

    /// [`Recorder::start_with`] with more environment variables (a key that must not be on the command line).
    pub(crate) async fn start_with_env(emulator: &Emulator, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(recorder_binary());
        command.envs(env.iter().copied());
        command
            .args(["--listen", "127.0.0.1:0", "--webhook-secret", SECRET, "--no-progress"])
            .args(extra)
            .args(["--allow-host", &emulator.storage_authority(), "--out"])
            .arg(out)
            .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string());
        let Listening { child, addr, stdout, stderr } = spawn_listening(command, "the recorder").await;
        let recorder = Self { child: Some(child), addr, stdout, stderr };
        let publisher = &recorder.publisher();
        eventually(Duration::from_secs(60), "the recorder's webhook comes up", || async move {
            publisher.validate().await.ok()
        })
        .await;
        recorder
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/api/events?code={SECRET}", self.addr)
    }

    pub(crate) fn publisher(&self) -> EventGridPublisher {
        let once = RetryPolicy {
            delays: vec![Duration::from_millis(5)],
            max_attempts: 1,
            response_timeout: Duration::from_secs(10),
        };
        EventGridPublisher::new(&self.url(), Schema::EventGrid).unwrap().with_retry(once)
    }

    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        // The shell's built-in `kill`, so that no procps binary is needed.
        let status = Command::new("sh").args(["-c", &format!("kill -{signal} {pid}")]).status().unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the process ends at once, in the middle of whatever it does.
    pub(crate) fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.take().expect("running").wait();
    }

    /// Waits (bounded) for the process to exit; answers its status and output.
    pub(crate) async fn exited(mut self) -> (std::process::ExitStatus, String, String) {
        let mut child = self.child.take().expect("running");
        let status =
            eventually(Duration::from_secs(60), "the recorder stops", || std::future::ready(child.try_wait().unwrap()))
                .await;
        // The pipes close with the process; give the readers a moment to take the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stdout, stderr)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn journal_dir(out: &Path) -> PathBuf {
    out.join(".acs-recording")
}

pub(crate) async fn job(out: &Path, event: &OutgoingEvent) -> Option<Job> {
    let journal = FileJournal::open_read_only(journal_dir(out)).ok()?;
    journal.get(&JobId::for_event(&event.id)).await.ok().flatten()
}

pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    eventually(Duration::from_secs(60), what, || std::future::ready(done().then_some(()))).await
}

pub(crate) async fn wait_for_job(out: &Path, event: &OutgoingEvent, what: &str, accept: impl Fn(&Job) -> bool) -> Job {
    let accept = &accept;
    eventually(Duration::from_secs(60), what, || async move { job(out, event).await.filter(|job| accept(job)) }).await
}

pub(crate) fn media_path(out: &Path, recording: &StoredRecording, index: usize) -> PathBuf {
    let chunk = &recording.chunks[index];
    out.join(&recording.call_id).join(format!("{}-{}.wav", chunk.index, chunk.document_id))
}

/// Every chunk's file has the emulator's SHA-256, the job is done, and the journal holds that one job.
pub(crate) async fn assert_complete(out: &Path, recording: &StoredRecording, event: &OutgoingEvent) {
    let job = wait_for_job(out, event, "the job is done", |job| job.state == JobState::Done).await;
    for (index, chunk) in recording.chunks.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(media_path(out, recording, index)).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "chunk {index}");
        assert_eq!(job.chunks[index].state, ChunkState::Stored);
    }
    let jobs = FileJournal::open_read_only(journal_dir(out)).unwrap().list().await.unwrap();
    assert_eq!(jobs.len(), 1, "no duplicate job: {jobs:?}");
}

/// The resident memory of a process, from `/proc/<pid>/status`.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The open file descriptors of a process, from `/proc/<pid>/fd`.
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|entries| entries.count()).unwrap_or(0)
}
