//! A gRPC service without generated code: a codec over raw bytes and `acs.example.Reverse/Call`, which answers
//! with the request's bytes reversed. Shared by `examples/tonic_app.rs` and `tests/protocol/webhook_tonic.rs`.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use http::{Request, Response};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::Status;
use tower::service_fn;

/// The method's path.
pub const REVERSE_CALL: &str = "/acs.example.Reverse/Call";

/// A gRPC codec over raw bytes, so the example needs no generated code or protoc.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// `acs.example.Reverse/Call`: answers with the request's bytes reversed.
#[derive(Debug, Clone)]
pub struct ReverseService;

impl NamedService for ReverseService {
    const NAME: &'static str = "acs.example.Reverse";
}

impl tower::Service<Request<tonic::body::Body>> for ReverseService {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let reverse = service_fn(|request: tonic::Request<Bytes>| async move {
                let mut bytes = request.into_inner().to_vec();
                bytes.reverse();
                Ok::<_, Status>(tonic::Response::new(Bytes::from(bytes)))
            });
            Ok(tonic::server::Grpc::new(RawCodec).unary(reverse, request).await)
        })
    }
}
