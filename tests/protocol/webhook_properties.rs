//! Property tests: whatever the body, the layer answers 200 for a valid delivery or a 4xx, and never panics.

use std::convert::Infallible;

use crate::support::{self, fixture};
use acs_recording::eventgrid::{EventGridWebhookLayer, Events, Schema};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const FIXTURES: [(&str, &str); 6] = [
    ("application/json", "recording_three_chunks.eventgrid.json"),
    ("application/cloudevents-batch+json", "recording_three_chunks.cloudevents.json"),
    ("application/json", "mixed_batch.eventgrid.json"),
    ("application/json", "recording_2021.eventgrid.json"),
    ("application/json", "subscription_validation.eventgrid.json"),
    ("application/cloudevents+json", "official_recording_file_status_updated.cloudevents.json"),
];

/// Sends the body through the layer and returns the status; the inner handler always answers 200.
fn status_for(content_type: &str, body: Bytes) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let handler =
            service_fn(|_: Request<Full<Bytes>>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) });
        let mut webhook =
            ServiceBuilder::new().layer(EventGridWebhookLayer::new().max_body_bytes(64 * 1024)).service(handler);
        let request =
            Request::post("/events").header("content-type", content_type).body(Full::new(body)).expect("request");
        let response = webhook.ready().await.expect("ready").call(request).await.expect("infallible");
        response.status().as_u16()
    })
}

fn schema(content_type: &str) -> Schema {
    Schema::from_content_type(content_type).expect("known content type")
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: support::regressions_beside_the_test(), .. ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_get_a_4xx_unless_they_are_a_valid_delivery(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cloud_events in any::<bool>(),
    ) {
        let content_type = if cloud_events { "application/cloudevents+json" } else { "application/json" };
        let status = status_for(content_type, Bytes::from(bytes.clone()));
        if status == 200 {
            prop_assert!(Events::from_slice(schema(content_type), &bytes).is_ok());
        } else {
            prop_assert!((400..500).contains(&status), "status {}", status);
        }
    }

    #[test]
    fn every_truncation_of_a_valid_body_gets_a_4xx(fixture_index in 0..FIXTURES.len(), cut in any::<prop::sample::Index>()) {
        let (content_type, name) = FIXTURES[fixture_index];
        let full = fixture(name);
        let trimmed = full.as_ref().trim_ascii_end().len();
        let length = cut.index(trimmed);
        let status = status_for(content_type, full.slice(..length));
        prop_assert!((400..500).contains(&status), "{} cut at {}: status {}", name, length, status);
    }

    #[test]
    fn a_corrupted_byte_gets_200_only_when_the_body_still_parses(
        fixture_index in 0..FIXTURES.len(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (content_type, name) = FIXTURES[fixture_index];
        let mut bytes = fixture(name).to_vec();
        let position = at.index(bytes.len());
        bytes[position] = byte;
        let status = status_for(content_type, Bytes::from(bytes.clone()));
        if status == 200 {
            prop_assert!(Events::from_slice(schema(content_type), &bytes).is_ok());
        } else {
            prop_assert!((400..500).contains(&status), "{} byte {} at {}: status {}", name, byte, position, status);
        }
    }
}

#[test]
fn every_fixture_is_accepted_whole() {
    for (content_type, name) in FIXTURES {
        assert_eq!(status_for(content_type, fixture(name)), 200, "{name}");
    }
}
