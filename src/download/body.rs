//! One chunk as a resumable `Stream` of `Bytes` and an `http_body::Body`.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};

use super::error::{Detail, Error, ErrorKind, Scope};
use super::fetch::{Event, Fetch, Finished};
use crate::client::{HttpClient, RequestBody};
use crate::Sha256Digest;

/// What the fetch's stream yields: its events, then how it finished.
enum Step {
    Event(Event),
    Finished(Finished),
}

type Steps = Pin<Box<dyn Stream<Item = Result<Step, Error>> + Send>>;

/// The fetch as a stream, boxed once per chunk: each step runs in place, without an allocation per frame.
fn steps<S: HttpClient<B>, B: RequestBody>(fetch: Fetch<S, B>) -> Steps {
    Box::pin(futures_util::stream::unfold(Some(fetch), |fetch| async move {
        let mut fetch = fetch?;
        match fetch.next().await {
            Ok(Some(event)) => Some((Ok(Step::Event(event)), Some(fetch))),
            Ok(None) => Some((Ok(Step::Finished(fetch.finished())), None)),
            Err(error) => Some((Err(error), None)),
        }
    }))
}

/// One chunk's media as a [`Stream`] of [`Bytes`] and an [`http_body::Body`], from
/// [`ChunkDownloader::chunk_body`](super::ChunkDownloader::chunk_body).
///
/// Failures are retried and resumed inside, exactly as for a sink: the consumer sees each byte once, in order, of
/// one version of the object. When the object changes after bytes were handed out, the stream ends with an
/// [`ErrorKind::ObjectChanged`] error (bytes cannot be taken back). Once it ended, [`ChunkBody::sha256`] gives the
/// SHA-256 of everything it yielded. Memory stays constant: one response frame at a time.
pub struct ChunkBody {
    steps: Option<Steps>,
    yielded: u64,
    total: Option<u64>,
    finished: Option<Finished>,
    scope: Scope,
}

impl ChunkBody {
    pub(crate) fn new<S: HttpClient<B>, B: RequestBody>(fetch: Fetch<S, B>, scope: Scope) -> Self {
        Self { steps: Some(steps(fetch)), yielded: 0, total: None, finished: None, scope }
    }

    /// The SHA-256 of the whole chunk, once the stream ended without error.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.finished.map(|finished| finished.sha256)
    }

    /// Bytes yielded so far (all of them once the stream ended).
    pub fn bytes(&self) -> u64 {
        self.yielded
    }

    /// The chunk's size, once the server told it.
    pub fn total(&self) -> Option<u64> {
        self.finished.map(|finished| finished.bytes).or(self.total)
    }
}

impl fmt::Debug for ChunkBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.steps, &self.finished) {
            (Some(_), _) => "streaming",
            (None, Some(_)) => "done",
            (None, None) => "failed",
        };
        f.debug_struct("ChunkBody").field("chunk", &format_args!("{}", self.scope)).field("state", &state).finish()
    }
}

impl Stream for ChunkBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(steps) = this.steps.as_mut() else { return Poll::Ready(None) };
            match ready!(steps.as_mut().poll_next(cx)) {
                Some(Ok(Step::Event(Event::Data(bytes)))) => {
                    this.yielded += bytes.len() as u64;
                    return Poll::Ready(Some(Ok(bytes)));
                }
                Some(Ok(Step::Event(Event::Pinned(version)))) => this.total = version.total,
                Some(Ok(Step::Event(Event::Restart))) if this.yielded == 0 => this.total = None,
                Some(Ok(Step::Event(Event::Restart))) => {
                    this.steps = None;
                    let error = Error::new(ErrorKind::ObjectChanged, Detail::ChangedAfterYield(this.yielded));
                    return Poll::Ready(Some(Err(error.in_scope(&this.scope))));
                }
                Some(Ok(Step::Finished(finished))) => {
                    this.finished = Some(finished);
                    this.steps = None;
                    return Poll::Ready(None);
                }
                Some(Err(error)) => {
                    this.steps = None;
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    this.steps = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.poll_next(cx).map(|item| item.map(|result| result.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.steps, self.total) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Some(total)) => SizeHint::with_exact(total.saturating_sub(self.yielded)),
            (Some(_), None) => SizeHint::default(),
        }
    }
}
