//! The storage's response bodies: a JSON problem, nothing, or a range of a document in frames, paced and cut
//! as its link and faults say.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::emulator::media::{Content, FRAME};

use super::fault::Cut;
use super::link::Throttle;

/// The storage's response body: a JSON problem, nothing, or a range of a document served in frames.
pub struct StorageBody {
    kind: Kind,
    pub(super) throttle: Option<Throttle>,
}

pub(super) enum Kind {
    Full(Option<Bytes>),
    Content { content: Content, at: u64, end: u64, cut: Cut, pause: Option<Pin<Box<tokio::time::Sleep>>> },
}

/// How long a cut body waits before failing, so the connection flushes the bytes already given to it: the client
/// then receives exactly the bytes the log counts.
pub(super) const FLUSH_PAUSE: Duration = Duration::from_millis(20);

impl StorageBody {
    pub(in crate::emulator) fn empty() -> Self {
        Self { kind: Kind::Full(None), throttle: None }
    }

    pub(in crate::emulator) fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full(Some(bytes)), throttle: None }
    }

    pub(super) fn content(content: Content, start: u64, end: u64, cut: Cut) -> Self {
        let (end, cut) = match cut {
            Cut::Drop(n) | Cut::Short(n) | Cut::Stall(n) if start.saturating_add(n) < end => (start + n, cut),
            _ => (end, Cut::None),
        };
        Self { kind: Kind::Content { content, at: start, end, cut, pause: None }, throttle: None }
    }
}

impl fmt::Debug for StorageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageBody").finish_non_exhaustive()
    }
}

impl Body for StorageBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Content { content, at, end, cut, pause } => {
                if *at >= *end {
                    if let Cut::Stall(_) = cut {
                        // Never wakes: the connection stays open and silent until the client closes it.
                        return Poll::Pending;
                    }
                    if *cut != Cut::None {
                        let sleep = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_PAUSE)));
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    return Poll::Ready(match *cut {
                        Cut::Drop(_) => {
                            *cut = Cut::None;
                            Some(Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected connection drop")))
                        }
                        Cut::Short(_) | Cut::Stall(_) => {
                            *cut = Cut::None;
                            None
                        }
                        Cut::None => None,
                    });
                }
                let mut max = usize::try_from(*end - *at).unwrap_or(FRAME).min(FRAME);
                if let Some(throttle) = &mut this.throttle {
                    if throttle.poll_ready(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Small frames on a slow link, so that the pace is even within a frame's time.
                    max = max.min(usize::try_from(throttle.rate / 100).unwrap_or(FRAME).clamp(16 * 1024, FRAME));
                    throttle.sent += max as u64;
                }
                let part = content.slice(*at, max);
                *at += part.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(part))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Content { at, end, cut, .. } => at >= end && *cut == Cut::None,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Content { at, end, cut: Cut::None, .. } => SizeHint::with_exact(end - at),
            Kind::Content { .. } => SizeHint::default(),
        }
    }
}

/// A body that counts the bytes it hands to the connection into the request log.
pub(crate) struct Counted<B> {
    inner: B,
    sent: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, sent: Arc<AtomicU64>) -> Self {
        Self { inner, sent }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
