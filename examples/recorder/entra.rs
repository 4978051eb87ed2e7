//! `--auth entra`: an `azure_identity` credential whose HTTP goes through the same hyper-rustls client as the
//! downloads, so the example carries one TLS stack.

use std::sync::Arc;

use acs_recording::BoxError;
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, ClientOptions, HttpClient, Request, Transport};
use azure_identity::{DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Which identity the recorder asks for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EntraCredential {
    /// The managed identity of the host (App Service, Container Apps, a VM): no secret to keep.
    Managed,
    /// A developer's sign-in: the Azure CLI (`az login`), then the Azure Developer CLI (`azd auth login`).
    Developer,
}

/// The credential for `kind`.
pub(crate) fn credential(kind: EntraCredential) -> Result<Arc<dyn TokenCredential>, BoxError> {
    Ok(match kind {
        EntraCredential::Managed => {
            let options = ManagedIdentityCredentialOptions {
                client_options: ClientOptions {
                    transport: Some(Transport::new(Arc::new(HyperTransport::new()))),
                    ..ClientOptions::default()
                },
                ..ManagedIdentityCredentialOptions::default()
            };
            ManagedIdentityCredential::new(Some(options))?
        }
        EntraCredential::Developer => DeveloperToolsCredential::new(None)?,
    })
}

/// `azure_core`'s `HttpClient` over hyper-util and rustls (the managed identity endpoint is plain http on the
/// host; Entra itself is https).
#[derive(Debug, Clone)]
struct HyperTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HyperTransport {
    fn new() -> Self {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        Self { client: Client::builder(TokioExecutor::new()).build(https) }
    }
}

#[async_trait]
impl HttpClient for HyperTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let body = match request.body() {
            Body::Bytes(bytes) => bytes.clone(),
            Body::SeekableStream(_) => {
                return Err(Error::with_message(ErrorKind::Other, "streamed request bodies are not supported"))
            }
        };
        let mut builder = http::Request::builder().method(request.method().as_str()).uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder.body(Full::new(body)).map_err(|error| Error::new(ErrorKind::Other, error))?;
        let response = self.client.request(outgoing).await.map_err(|error| Error::new(ErrorKind::Io, error))?;
        let (parts, incoming) = response.into_parts();
        let bytes = incoming.collect().await.map_err(|error| Error::new(ErrorKind::Io, error))?.to_bytes();
        let mut headers = Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(value) = value.to_str() {
                headers.insert(HeaderName::from(name.as_str().to_owned()), HeaderValue::from(value.to_owned()));
            }
        }
        Ok(AsyncRawResponse::from_bytes(parts.status.as_u16().into(), headers, bytes))
    }
}
