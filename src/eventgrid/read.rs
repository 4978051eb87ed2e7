//! Reading a delivery body under a limit, shared by the layer and the extractors.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, Method, Request};
use http_body::Body;

use super::envelope::{Events, Schema};
use super::error::{Error, ErrorKind};
use crate::BoxError;

/// The default body limit: 1 MiB, the largest preferred batch size an Event Grid subscription can be given.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The schema named by the request's `Content-Type`, or a 415.
pub(crate) fn schema_of(headers: &HeaderMap) -> Result<Schema, Error> {
    let value = headers.get(header::CONTENT_TYPE).ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedMediaType,
            "missing content type: expected application/json or application/cloudevents+json",
        )
    })?;
    // Event Grid sends exactly this: comparing the bytes skips the UTF-8 check of `to_str`.
    if value.as_bytes() == b"application/json" {
        return Ok(Schema::EventGrid);
    }
    value.to_str().ok().and_then(Schema::from_content_type).ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "unsupported content type `{}`: expected application/json, application/cloudevents+json or application/cloudevents-batch+json",
                String::from_utf8_lossy(value.as_bytes())
            ),
        )
    })
}

/// A 413 when `Content-Length` announces more than the limit, decided before reading.
pub(crate) fn check_content_length(headers: &HeaderMap, limit: usize) -> Result<(), Error> {
    // Parsing the trimmed bytes reads the same number as `to_str` then `trim` would (a value that is not visible
    // ASCII is no number either way), without the extra pass of `to_str`.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| std::str::from_utf8(value.as_bytes().trim_ascii()).ok()?.parse::<u64>().ok());
    match length {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

fn too_large(limit: usize) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, format!("the body is over the limit of {limit} bytes"))
}

/// Collects a body into one `Bytes`, failing with a 413 as soon as it passes the limit.
///
/// A body that arrives as a single frame is kept as is, without a copy.
#[derive(Debug)]
pub(crate) struct Collector {
    limit: usize,
    length: usize,
    first: Option<Bytes>,
    rest: BytesMut,
}

impl Collector {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, length: 0, first: None, rest: BytesMut::new() }
    }

    pub(crate) fn poll_collect<B>(&mut self, mut body: Pin<&mut B>, cx: &mut Context<'_>) -> Poll<Result<Bytes, Error>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if body.size_hint().lower() > self.limit as u64 {
            return Poll::Ready(Err(too_large(self.limit)));
        }
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else { continue };
                    let size = data.remaining();
                    self.length = self.length.saturating_add(size);
                    if self.length > self.limit {
                        return Poll::Ready(Err(too_large(self.limit)));
                    }
                    let chunk = data.copy_to_bytes(size);
                    if self.first.is_none() && self.rest.is_empty() {
                        self.first = Some(chunk);
                    } else {
                        if let Some(first) = self.first.take() {
                            self.rest.reserve(first.len() + chunk.len());
                            self.rest.extend_from_slice(&first);
                        }
                        self.rest.extend_from_slice(&chunk);
                    }
                }
                Some(Err(source)) => {
                    let error = Error::new(ErrorKind::BodyRead, "the body could not be read to its end");
                    return Poll::Ready(Err(error.with_source(source)));
                }
                None => {
                    let bytes = match self.first.take() {
                        Some(first) => first,
                        None => std::mem::take(&mut self.rest).freeze(),
                    };
                    return Poll::Ready(Ok(bytes));
                }
            }
        }
    }
}

impl Events {
    /// Reads the events of a request: from its extensions when the webhook layer already parsed them, otherwise
    /// from its body, with the layer's checks (415 for the content type, 413 over `max_body_bytes`, 400 for bad
    /// JSON). Authentication and handshakes need the layer.
    pub async fn extract<B>(request: Request<B>, max_body_bytes: usize) -> Result<Self, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        if let Some(events) = parts.extensions.remove::<Events>() {
            return Ok(events);
        }
        only_post(&parts.method)?;
        let schema = schema_of(&parts.headers)?;
        read_events(&parts.headers, body, schema, max_body_bytes).await
    }

    /// Like [`Events::extract`], but reads the body in `schema` whatever JSON content type it came with (any that
    /// [`Schema::from_content_type`] knows): Call Automation posts its CloudEvents callbacks as a JSON array.
    pub async fn extract_as<B>(request: Request<B>, schema: Schema, max_body_bytes: usize) -> Result<Self, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        if let Some(events) = parts.extensions.remove::<Events>() {
            return Ok(events);
        }
        only_post(&parts.method)?;
        schema_of(&parts.headers)?;
        read_events(&parts.headers, body, schema, max_body_bytes).await
    }
}

/// Events come in a `POST`: the body of any other method is never read as a delivery (405).
fn only_post(method: &Method) -> Result<(), Error> {
    if method == Method::POST {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::MethodNotAllowed,
        format!("method {method} is not allowed: events are delivered with POST"),
    ))
}

async fn read_events<B>(headers: &HeaderMap, body: B, schema: Schema, max_body_bytes: usize) -> Result<Events, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    check_content_length(headers, max_body_bytes)?;
    let mut body = std::pin::pin!(body);
    let mut collector = Collector::new(max_body_bytes);
    let bytes = std::future::poll_fn(|cx| collector.poll_collect(body.as_mut(), cx)).await?;
    Events::from_slice(schema, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    fn chunked(parts: &'static [&'static [u8]]) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames = parts.iter().map(|part| Ok(http_body::Frame::data(Bytes::from_static(part))));
        StreamBody::new(futures_util_stream(frames))
    }

    // A minimal stream over an iterator, to avoid a dependency for tests.
    fn futures_util_stream<I: Iterator + Unpin>(iter: I) -> IterStream<I> {
        IterStream(iter)
    }

    struct IterStream<I>(I);

    impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
        type Item = I::Item;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
            Poll::Ready(self.0.next())
        }
    }

    #[tokio::test]
    async fn frames_are_joined_and_the_limit_holds_while_streaming() {
        let request =
            Request::post("/").header("content-type", "application/json").body(chunked(&[b"[", b"]"])).unwrap();
        assert!(Events::extract(request, 2).await.unwrap().is_empty());

        let request =
            Request::post("/").header("content-type", "application/json").body(chunked(&[b"[", b" ", b"]"])).unwrap();
        let error = Events::extract(request, 2).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PayloadTooLarge);
    }

    #[tokio::test]
    async fn a_body_that_fails_mid_way_is_a_503_with_the_cause_as_source() {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"[{"))),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went away")),
        ];
        let body = StreamBody::new(IterStream(frames.into_iter()));
        let request = Request::post("/").header("content-type", "application/json").body(body).unwrap();
        let error = Events::extract(request, 1024).await.unwrap_err();
        assert_eq!((error.kind(), error.status().as_u16()), (ErrorKind::BodyRead, 503));
        assert_eq!(error.to_string(), "the body could not be read to its end");
        let source = std::error::Error::source(&error).expect("source");
        assert_eq!(source.to_string(), "peer went away");
    }

    #[tokio::test]
    async fn the_body_of_a_request_other_than_post_is_never_read_as_events() {
        let body = r#"[{"id":"1","topic":"t","subject":"s","eventType":"x","eventTime":"2024-01-01T00:00:00Z","data":{},"dataVersion":"1"}]"#;
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let request = Request::builder()
                .method(method.clone())
                .header("content-type", "application/json")
                .body(body.to_owned());
            let error = Events::extract(request.unwrap(), 1024).await.unwrap_err();
            assert_eq!((error.kind(), error.status().as_u16()), (ErrorKind::MethodNotAllowed, 405), "{method}");
            assert_eq!(error.to_string(), format!("method {method} is not allowed: events are delivered with POST"));
            assert_eq!(error.to_response().headers()["allow"], "POST, OPTIONS");
        }
    }

    #[test]
    fn content_length_over_the_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert_eq!(check_content_length(&headers, 10).unwrap_err().kind(), ErrorKind::PayloadTooLarge);
        assert!(check_content_length(&headers, 11).is_ok());
    }

    #[test]
    fn content_length_is_read_with_its_surrounding_blanks_and_ignored_when_not_a_number() {
        let cases: [(&[u8], bool); 6] =
            [(b" 11\t", false), (b"+11", false), (b"10", true), (b"1 1", true), (b"eleven", true), (b"\xff11", true)];
        for (value, accepted) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from_bytes(value).unwrap());
            assert_eq!(check_content_length(&headers, 10).is_ok(), accepted, "{value:?}");
        }
    }

    #[test]
    fn the_content_type_names_the_schema() {
        let cases = [
            ("application/json", Some(Schema::EventGrid)),
            ("Application/JSON; charset=utf-8", Some(Schema::EventGrid)),
            ("application/cloudevents-batch+json", Some(Schema::CloudEvents)),
            ("text/plain", None),
        ];
        for (value, schema) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(schema_of(&headers).ok(), schema, "{value}");
        }
    }
}
