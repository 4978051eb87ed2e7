//! Signs a recording-download request and prints what would be sent.
//!
//! Uses `ACS_CONNECTION_STRING` when set, otherwise a demo resource and key. Nothing is sent over the network.
//!
//! ```sh
//! cargo run --example sign_request -- [document-id]
//! ```

use std::convert::Infallible;

use acs_recording::credential::ConnectionString;
use acs_recording::signing::HmacSigningLayer;
use bytes::Bytes;
use http_body_util::Empty;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Everything but RFC 3986 unreserved characters is encoded, so an id stays one path segment.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

const DEMO: &str = "endpoint=https://contoso.communication.azure.com/;accesskey=ZGVtbyBrZXksIG5vdCBhIHNlY3JldA==";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connection_string = match ConnectionString::from_env() {
        Ok(cs) => cs,
        Err(_) => {
            eprintln!("ACS_CONNECTION_STRING is not set; signing for a demo resource");
            DEMO.parse()?
        }
    };
    let document_id = std::env::args().nth(1).unwrap_or_else(|| "0-eus-d2-3cca2175d2a8a1bc3b63c4cd3c1c8d07".into());
    let url = format!(
        "{}recording/download/{}?api-version=2021-04-15-preview1",
        connection_string.endpoint().url(),
        percent_encoding::utf8_percent_encode(&document_id, SEGMENT),
    );

    // The signing layer wraps any client; here a stand-in that returns the request instead of sending it.
    let client = ServiceBuilder::new()
        .layer(HmacSigningLayer::from_connection_string(&connection_string))
        .service(service_fn(|request: http::Request<Empty<Bytes>>| async move { Ok::<_, Infallible>(request) }));
    let signed = client.oneshot(http::Request::get(url).body(Empty::new())?).await?;

    println!("{} {}", signed.method(), signed.uri());
    for (name, value) in signed.headers() {
        println!("{name}: {}", value.to_str()?);
    }
    Ok(())
}
