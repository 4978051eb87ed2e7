//! One chunk as a resumable `Stream` of `Bytes` and an `http_body::Body`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::Request;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use tower::Service;

use super::error::{Error, ErrorKind};
use super::fetch::{Event, Fetch, Finished};
use crate::BoxError;

type Step = (Box<dyn FrameSource>, Result<Option<Event>, Error>);

/// A fetch with its types erased, driven one event at a time.
pub(crate) trait FrameSource: Send + 'static {
    fn next_event(self: Box<Self>) -> Pin<Box<dyn Future<Output = Step> + Send>>;
    fn finished(&self) -> Finished;
    fn total(&self) -> Option<u64>;
    fn offset(&self) -> u64;
}

impl<S, B, RB> FrameSource for Fetch<S, B, RB>
where
    S: Service<Request<B>, Response = Response<RB>> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Default + Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    fn next_event(mut self: Box<Self>) -> Pin<Box<dyn Future<Output = Step> + Send>> {
        Box::pin(async move {
            let result = self.next().await;
            (self as Box<dyn FrameSource>, result)
        })
    }

    fn finished(&self) -> Finished {
        Fetch::finished(self)
    }

    fn total(&self) -> Option<u64> {
        Fetch::total(self)
    }

    fn offset(&self) -> u64 {
        Fetch::offset(self)
    }
}

enum State {
    Idle(Box<dyn FrameSource>),
    Busy(Pin<Box<dyn Future<Output = Step> + Send>>),
    Done(Finished),
    Failed,
}

/// One chunk's media as a [`Stream`] of [`Bytes`] and an [`http_body::Body`], from
/// [`ChunkDownloader::chunk_body`](super::ChunkDownloader::chunk_body).
///
/// Failures are retried and resumed inside, exactly as for a sink: the consumer sees each byte once, in order, of
/// one version of the object. When the object changes after bytes were handed out, the stream ends with an
/// [`ErrorKind::ObjectChanged`] error (bytes cannot be taken back). Once it ended, [`ChunkBody::sha256`] gives the
/// SHA-256 of everything it yielded. Memory stays constant: one response frame at a time.
pub struct ChunkBody {
    state: State,
    yielded: u64,
    label: String,
}

impl ChunkBody {
    pub(crate) fn new(source: Box<dyn FrameSource>, label: String) -> Self {
        Self { state: State::Idle(source), yielded: 0, label }
    }

    /// The SHA-256 of the whole chunk, once the stream ended without error.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        match &self.state {
            State::Done(finished) => Some(finished.sha256),
            _ => None,
        }
    }

    /// Bytes yielded so far (all of them once the stream ended).
    pub fn bytes(&self) -> u64 {
        match &self.state {
            State::Idle(source) => source.offset(),
            State::Done(finished) => finished.bytes,
            _ => 0,
        }
    }

    /// The chunk's size, once the server told it.
    pub fn total(&self) -> Option<u64> {
        match &self.state {
            State::Idle(source) => source.total(),
            State::Done(finished) => Some(finished.bytes),
            _ => None,
        }
    }
}

impl fmt::Debug for ChunkBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Busy(_) => "busy",
            State::Done(_) => "done",
            State::Failed => "failed",
        };
        f.debug_struct("ChunkBody").field("chunk", &self.label).field("state", &state).finish()
    }
}

impl Stream for ChunkBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Failed) {
                State::Idle(source) => this.state = State::Busy(source.next_event()),
                State::Busy(mut future) => match future.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Busy(future);
                        return Poll::Pending;
                    }
                    Poll::Ready((source, result)) => match result {
                        Ok(Some(Event::Data(bytes))) => {
                            this.yielded += bytes.len() as u64;
                            this.state = State::Idle(source);
                            return Poll::Ready(Some(Ok(bytes)));
                        }
                        Ok(Some(Event::Pinned(_))) => this.state = State::Idle(source),
                        Ok(Some(Event::Restart)) if this.yielded == 0 => this.state = State::Idle(source),
                        Ok(Some(Event::Restart)) => {
                            let message = format!(
                                "{}: object changed after {} bytes were yielded by the stream",
                                this.label, this.yielded
                            );
                            return Poll::Ready(Some(Err(Error::new(ErrorKind::ObjectChanged, message))));
                        }
                        Ok(None) => {
                            this.state = State::Done(source.finished());
                            return Poll::Ready(None);
                        }
                        Err(error) => return Poll::Ready(Some(Err(error))),
                    },
                },
                State::Done(finished) => {
                    this.state = State::Done(finished);
                    return Poll::Ready(None);
                }
                State::Failed => return Poll::Ready(None),
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
        matches!(self.state, State::Done(_) | State::Failed)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Idle(source) => match source.total() {
                Some(total) => SizeHint::with_exact(total.saturating_sub(source.offset())),
                None => SizeHint::default(),
            },
            State::Done(_) | State::Failed => SizeHint::with_exact(0),
            State::Busy(_) => SizeHint::default(),
        }
    }
}
