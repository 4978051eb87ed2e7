//! The parser of dead-letter blobs: each entry's event, in its schema, and the properties Event Grid added to it.
//!
//! The shapes come from Microsoft's documentation (MicrosoftDocs/azure-docs, `articles/event-grid/`):
//! `delivery-and-retry.md` ("Delivery event formats": a basic-tier dead-letter event is the event with
//! `deadLetterReason`, `deliveryAttempts`, `lastDeliveryOutcome`, `publishTime`, `lastDeliveryAttemptTime` beside its
//! fields, lower-case in the CloudEvents schema) and `dead-letter-event-subscriptions-namespace-topics.md`
//! ("Dead-letter format": a namespace dead-letter event is a CloudEvent, on its own or wrapped in `event`, with
//! `deadletterProperties` and `customDeliveryProperties` beside it).

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::eventgrid::{Events, Schema};

/// The fields a basic-tier (system or custom topic) subscription adds to each dead-lettered event, lower-cased.
const BASIC_FIELDS: [&str; 6] = [
    "deadletterreason",
    "deliveryattempts",
    "lastdeliveryoutcome",
    "lasthttpstatuscode",
    "publishtime",
    "lastdeliveryattempttime",
];

/// The object a namespace subscription puts beside each dead-lettered event, lower-cased.
const NAMESPACE_PROPERTIES: &str = "deadletterproperties";
/// The push headers a namespace subscription keeps beside each dead-lettered event, lower-cased.
const NAMESPACE_HEADERS: &str = "customdeliveryproperties";

/// Which Event Grid wrote the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// A system or custom topic's event subscription: the properties are fields of the event.
    Basic,
    /// A namespace topic's event subscription: the properties are in `deadletterProperties`.
    Namespace,
}

/// Why Event Grid gave up on an event, as it wrote it; each field is `None` when the blob did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterProperties {
    /// `deadLetterReason` (`MaxDeliveryAttemptsExceeded`, `TimeToLiveExceeded`, ...).
    pub reason: Option<String>,
    /// `deliveryAttempts`.
    pub delivery_attempts: Option<u64>,
    /// `lastDeliveryOutcome` (basic) or `deliveryresult` (namespace): `NotFound`, `Unauthorized`, ...
    pub last_outcome: Option<String>,
    /// `lastHttpStatusCode`, as written.
    pub last_http_status: Option<String>,
    /// `publishTime` (basic) or `publishutc` (namespace).
    pub published: Option<String>,
    /// `lastDeliveryAttemptTime` (basic) or `deliveryattemptutc` (namespace).
    pub last_attempt: Option<String>,
}

impl DeadLetterProperties {
    /// One line for the job's notes, saying why the event came late.
    pub fn note(&self) -> String {
        let mut note = format!("dead-lettered by Event Grid: {}", self.reason.as_deref().unwrap_or("reason not given"));
        if let Some(attempts) = self.delivery_attempts {
            note.push_str(&format!(" after {attempts} delivery attempt{}", if attempts == 1 { "" } else { "s" }));
        }
        if let Some(outcome) = &self.last_outcome {
            note.push_str(&format!("; last outcome {outcome}"));
        }
        if let Some(status) = &self.last_http_status {
            note.push_str(&format!(" (HTTP {status})"));
        }
        if let Some(at) = &self.last_attempt {
            note.push_str(&format!(" at {at}"));
        }
        if let Some(at) = &self.published {
            note.push_str(&format!("; published {at}"));
        }
        note
    }

    fn from_fields(fields: &Map<String, Value>, tier: Tier) -> Self {
        let get = |name: &str| fields.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value);
        let text = |name: &str| get(name).and_then(text);
        let (outcome, published, attempt) = match tier {
            Tier::Basic => ("lastDeliveryOutcome", "publishTime", "lastDeliveryAttemptTime"),
            Tier::Namespace => ("deliveryresult", "publishutc", "deliveryattemptutc"),
        };
        Self {
            reason: text("deadLetterReason"),
            delivery_attempts: get("deliveryAttempts").and_then(|value| match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
            last_outcome: text(outcome),
            last_http_status: text("lastHttpStatusCode"),
            published: text(published),
            last_attempt: text(attempt),
        }
    }
}

/// A string as is, a number or boolean as its JSON text; anything else is not a property value.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

/// One event of a dead-letter blob, parsed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetteredEvent {
    /// The blob's tier.
    pub tier: Tier,
    /// The event, alone, in its schema (recording or not).
    pub events: Events,
    /// What Event Grid said about its delivery.
    pub properties: DeadLetterProperties,
}

/// An entry of a blob that is not an event either schema reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnreadableEvent {
    /// Its position in the blob, from 0.
    pub position: usize,
    /// Its JSON text, as written.
    pub raw: String,
    /// Why it cannot be read.
    pub reason: String,
}

/// A blob that is not JSON (or not UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableBlob {
    reason: String,
}

impl UnreadableBlob {
    fn new(reason: String) -> Self {
        Self { reason }
    }
}

impl std::fmt::Display for UnreadableBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for UnreadableBlob {}

/// Parses a dead-letter blob: a JSON array of entries, one entry, or entries one after another. Each entry is an
/// event or an [`UnreadableEvent`]; `Err` when the blob is not JSON at all.
pub fn parse_blob(bytes: &[u8]) -> Result<Vec<Result<DeadLetteredEvent, UnreadableEvent>>, UnreadableBlob> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| UnreadableBlob::new(format!("not UTF-8 text (byte {})", error.valid_up_to())))?;
    let entries: Vec<&RawValue> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|error| UnreadableBlob::new(format!("not a JSON array of events: {error}")))?
    } else {
        serde_json::Deserializer::from_str(text)
            .into_iter::<&RawValue>()
            .collect::<Result<_, _>>()
            .map_err(|error| UnreadableBlob::new(format!("not JSON: {error}")))?
    };
    Ok(entries.into_iter().enumerate().map(|(position, raw)| parse_entry(position, raw)).collect())
}

fn parse_entry(position: usize, raw: &RawValue) -> Result<DeadLetteredEvent, UnreadableEvent> {
    let unreadable = |reason: String| UnreadableEvent { position, raw: raw.get().to_owned(), reason };
    let Ok(mut fields) = serde_json::from_str::<Map<String, Value>>(raw.get()) else {
        return Err(unreadable("not a JSON object".to_owned()));
    };
    let namespace_key = fields.keys().find(|key| key.eq_ignore_ascii_case(NAMESPACE_PROPERTIES)).cloned();
    let (tier, properties, event) = match namespace_key {
        Some(key) => {
            let properties = match fields.remove(&key) {
                Some(Value::Object(properties)) => DeadLetterProperties::from_fields(&properties, Tier::Namespace),
                _ => return Err(unreadable(format!("`{key}` is not an object"))),
            };
            fields.retain(|key, _| !key.eq_ignore_ascii_case(NAMESPACE_HEADERS));
            // The event wrapped in `event`, or the event's own fields beside the properties (structured mode).
            let event = match fields.remove("event") {
                Some(Value::Object(event)) if !fields.contains_key("id") => event,
                Some(other) => {
                    fields.insert("event".to_owned(), other);
                    fields
                }
                None => fields,
            };
            (Tier::Namespace, properties, event)
        }
        None => {
            let properties = DeadLetterProperties::from_fields(&fields, Tier::Basic);
            fields.retain(|key, _| !BASIC_FIELDS.iter().any(|field| key.eq_ignore_ascii_case(field)));
            (Tier::Basic, properties, fields)
        }
    };
    let schema = if event.contains_key("eventType") {
        Schema::EventGrid
    } else if event.contains_key("specversion") || event.contains_key("type") {
        Schema::CloudEvents
    } else {
        return Err(unreadable("neither an Event Grid event (`eventType`) nor a CloudEvent (`type`)".to_owned()));
    };
    let text = serde_json::to_vec(&event).map_err(|error| unreadable(error.to_string()))?;
    let events = Events::from_slice(schema, &text).map_err(|error| unreadable(error.to_string()))?;
    Ok(DeadLetteredEvent { tier, events, properties })
}

#[cfg(test)]
mod tests;
