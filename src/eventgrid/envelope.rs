//! Event Grid and CloudEvents envelopes, as typed events: the model the webhook hands to handlers.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::recording::RecordingFileStatusUpdated;

/// The event type of the Event Grid schema's validation handshake.
pub const SUBSCRIPTION_VALIDATION_EVENT: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// The event type that announces a subscription's removal.
pub const SUBSCRIPTION_DELETED_EVENT: &str = "Microsoft.EventGrid.SubscriptionDeletedEvent";
/// The event type of a recording ready to download, sent by ACS for each recording file.
pub const RECORDING_FILE_STATUS_UPDATED_EVENT: &str = "Microsoft.Communication.RecordingFileStatusUpdated";

/// Which envelope a delivery uses, told apart by its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schema {
    /// The Event Grid schema, `application/json`.
    EventGrid,
    /// CloudEvents 1.0, `application/cloudevents+json` or `application/cloudevents-batch+json`.
    CloudEvents,
}

impl Schema {
    /// The schema for a `Content-Type` value, matched on the media type only (parameters such as `charset` are
    /// ignored); `None` for any other media type.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        // Event Grid sends exactly this, so the usual case skips the split and the case-insensitive compares.
        if content_type == "application/json" {
            return Some(Self::EventGrid);
        }
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/json") {
            Some(Self::EventGrid)
        } else if media_type.eq_ignore_ascii_case("application/cloudevents+json")
            || media_type.eq_ignore_ascii_case("application/cloudevents-batch+json")
        {
            Some(Self::CloudEvents)
        } else {
            None
        }
    }
}

/// The events of one delivery, in the order they were sent.
///
/// The webhook layer stores this in the request extensions; read it with `request.extensions().get::<Events>()`,
/// or through the extractors in [`crate::recording`].
#[derive(Clone, Debug)]
pub struct Events {
    pub(super) schema: Schema,
    pub(super) events: Vec<Event>,
}

impl Events {
    /// Which envelope the delivery used.
    pub fn schema(&self) -> Schema {
        self.schema
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the delivery held no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in delivery order.
    pub fn as_slice(&self) -> &[Event] {
        &self.events
    }

    /// Iterates over the events.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.events.iter()
    }

    /// Takes the events out.
    pub fn into_vec(self) -> Vec<Event> {
        self.events
    }

    /// The validation code of the first subscription validation event, if any.
    pub fn validation_code(&self) -> Option<&str> {
        self.events.iter().find_map(|event| match &event.data {
            EventData::SubscriptionValidation(validation) => Some(validation.validation_code()),
            _ => None,
        })
    }
}

impl IntoIterator for Events {
    type Item = Event;
    type IntoIter = std::vec::IntoIter<Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}

/// One event: the envelope fields common to both schemas, and its data.
///
/// Deliveries are at least once: use [`Event::id`] to drop duplicates (see [`super::Deduplicator`]).
#[derive(Clone, Debug)]
pub struct Event {
    pub(super) id: String,
    /// Borrowed when it is one of the known types, which is nearly always: no copy of the same few strings per event.
    pub(super) event_type: Cow<'static, str>,
    pub(super) subject: Option<String>,
    pub(super) time: Option<String>,
    pub(super) source: Option<String>,
    pub(super) data_version: Option<Cow<'static, str>>,
    pub(super) data: EventData,
}

impl Event {
    /// The event id, unique per event and repeated on redelivery.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type (`eventType`, or `type` in CloudEvents).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The subject, such as `/recording/call/{callId}/...`.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// When the event happened (`eventTime` or `time`), as sent.
    pub fn time(&self) -> Option<&str> {
        self.time.as_deref()
    }

    /// Where the event comes from: `topic` in the Event Grid schema (absent when a publisher posts directly),
    /// `source` in CloudEvents.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The Event Grid `dataVersion`, absent in CloudEvents.
    pub fn data_version(&self) -> Option<&str> {
        self.data_version.as_deref()
    }

    /// The typed data.
    pub fn data(&self) -> &EventData {
        &self.data
    }

    /// Takes the data out.
    pub fn into_data(self) -> EventData {
        self.data
    }

    /// The recording data, when this is a `RecordingFileStatusUpdated` event.
    pub fn recording_file_status_updated(&self) -> Option<&RecordingFileStatusUpdated> {
        match &self.data {
            EventData::RecordingFileStatusUpdated(data) => Some(data),
            _ => None,
        }
    }

    /// Why the data was refused, when this event's type is known but its data does not fit it.
    pub fn rejected(&self) -> Option<&RejectedData> {
        match &self.data {
            EventData::Rejected(rejected) => Some(rejected),
            _ => None,
        }
    }
}

/// The data of an event, typed for the event types this crate knows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventData {
    /// A recording is ready to download.
    RecordingFileStatusUpdated(Box<RecordingFileStatusUpdated>),
    /// The Event Grid schema's validation handshake (answered by the webhook layer).
    SubscriptionValidation(SubscriptionValidation),
    /// The subscription was deleted; the raw data as sent.
    SubscriptionDeletion(Option<Box<RawValue>>),
    /// Any other event type: the raw JSON data as sent (`None` for a CloudEvent without `data`).
    Other(Option<Box<RawValue>>),
    /// A `RecordingFileStatusUpdated` event whose data does not fit the schema: the reason and the raw data. The
    /// rest of the batch is still delivered, so a handler can accept the valid events and record this one.
    Rejected(RejectedData),
}

/// The data of an event that was refused on its own, with the reason.
#[derive(Clone, Debug)]
pub struct RejectedData {
    pub(super) reason: String,
    pub(super) raw: Box<RawValue>,
}

impl RejectedData {
    /// Why the data was refused, e.g. ``invalid data for Microsoft.Communication.RecordingFileStatusUpdated:
    /// missing field `documentId` ``.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The data as sent.
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }
}

/// The data of a subscription validation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionValidation {
    pub(super) validation_code: String,
    pub(super) validation_url: Option<String>,
}

impl SubscriptionValidation {
    /// The code to echo back as `{"validationResponse":"<code>"}`.
    pub fn validation_code(&self) -> &str {
        &self.validation_code
    }

    /// The URL for manual validation (a GET within 5 minutes), when sent.
    pub fn validation_url(&self) -> Option<&str> {
        self.validation_url.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_match_on_the_media_type_only() {
        let cases = [
            ("application/json", Some(Schema::EventGrid)),
            ("Application/JSON; charset=utf-8", Some(Schema::EventGrid)),
            ("application/cloudevents+json; charset=UTF-8", Some(Schema::CloudEvents)),
            ("application/cloudevents-batch+json", Some(Schema::CloudEvents)),
            ("text/plain", None),
            ("application/jsonx", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(Schema::from_content_type(value), expected, "{value}");
        }
    }
}
