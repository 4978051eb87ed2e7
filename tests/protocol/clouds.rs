//! The cloud presets: which storage hosts each cloud's allow-list lets signed requests reach, and which Event Grid
//! origin its webhook layer grants in the CloudEvents handshake, behind a real axum server.

use crate::support::{send, TestServer};
use acs_recording::cloud::AzureCloud;
use acs_recording::eventgrid::{EventGridWebhookLayer, Events};
use acs_recording::signing::AllowList;
use axum::routing::post;
use axum::Router;
use http::{Method, StatusCode};

const HOSTS: [&str; 8] = [
    "https://eu-storage.asm.skype.com/v1/objects/d/content/audio",
    "https://x.asyncgw.teams.microsoft.com/v1/objects/d",
    "https://acct.blob.core.windows.net/recordings/d.wav",
    "https://x.ams.gov.teams.microsoft.us/v1/objects/d/content/audio",
    "https://acct.blob.core.usgovcloudapi.net/recordings/d.wav",
    "https://acct.blob.core.chinacloudapi.cn/recordings/d.wav",
    "https://evil.example/asm.skype.com",
    "http://eu-storage.asm.skype.com/v1/objects/d/content/audio",
];

#[test]
fn each_cloud_allows_its_own_storage_hosts_and_refuses_the_others() {
    // Per host above: allowed by public, US Government, China.
    let expected = [
        [true, false, false],
        [true, false, false],
        [true, false, false],
        [false, true, false],
        [false, true, false],
        [false, false, true],
        [false, false, false],
        [false, false, false],
    ];
    for (url, allowed) in HOSTS.iter().zip(expected) {
        for (cloud, allowed) in AzureCloud::ALL.into_iter().zip(allowed) {
            let result = AllowList::for_cloud(cloud).check(&url.parse().unwrap());
            assert_eq!(result.is_ok(), allowed, "{cloud} {url}: {result:?}");
        }
    }
    let refused = AllowList::for_cloud(AzureCloud::China).check(&HOSTS[0].parse().unwrap()).unwrap_err();
    assert_eq!(refused.to_string(), "host `eu-storage.asm.skype.com` is not on the allow-list");
    // The default list is the union the official SDKs allow (every cloud's ACS storage, the public blob storage),
    // so a recorder without a cloud is unchanged.
    for url in &HOSTS[..4] {
        assert!(AllowList::azure_defaults().check(&url.parse().unwrap()).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn the_webhook_grants_only_its_cloud_event_grid_origin() {
    for cloud in AzureCloud::ALL {
        let layer = EventGridWebhookLayer::new().cloud(cloud);
        let app = Router::new()
            .route("/api/events", post(|events: Events| async move { events.len().to_string() }).layer(layer));
        let server = TestServer::axum(app).await;
        let url = server.url("/api/events");
        for other in AzureCloud::ALL {
            let origin = other.webhook_origin();
            let reply = send(Method::OPTIONS, &url, &[("webhook-request-origin", origin)], "").await;
            if other == cloud {
                assert_eq!(reply.status, StatusCode::OK, "{cloud} grants {origin}");
                assert_eq!(reply.header("webhook-allowed-origin"), Some(origin));
            } else {
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "{cloud} refuses {origin}");
                assert_eq!(reply.header("webhook-allowed-origin"), None);
            }
        }
        server.stop().await;
    }
}
