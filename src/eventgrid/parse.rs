//! The parser of delivery bodies: one event or an array of events, in either schema, read once into [`Events`].

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::envelope::{
    Event, EventData, Events, RejectedData, Schema, SubscriptionValidation, RECORDING_FILE_STATUS_UPDATED_EVENT,
    SUBSCRIPTION_DELETED_EVENT, SUBSCRIPTION_VALIDATION_EVENT,
};
use super::error::{Error, ErrorKind};
use crate::recording::RecordingFileStatusUpdated;

impl Events {
    /// Parses a delivery body: one event or an array of events, in the given schema.
    pub fn from_slice(schema: Schema, body: &[u8]) -> Result<Self, Error> {
        // Event Grid sends `data` before `eventType`, so the type is often unknown when the data arrives. The
        // first pass guesses from the subject that a `/recording/` event is a recording event and parses its data
        // typed straight away. If that pass fails on anything but JSON syntax (a wrong guess, or recording data
        // that does not fit the schema), the second pass keeps every event's data raw first and types it
        // afterwards, so that one malformed recording event is kept as [`EventData::Rejected`] instead of failing
        // the whole batch. Either way a valid body gives the same result.
        let speculated = Cell::new(false);
        let fast = Context { schema, speculate: true, tolerant: false, speculated: &speculated };
        match parse(body, &fast) {
            Ok(events) => Ok(Self { schema, events }),
            Err(error) if error.kind() == ErrorKind::MalformedJson => Err(error),
            Err(_) => {
                let tolerant = Context { schema, speculate: false, tolerant: true, speculated: &speculated };
                parse(body, &tolerant).map(|events| Self { schema, events })
            }
        }
    }
}

impl<'de> Deserialize<'de> for SubscriptionValidation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            validation_code: String,
            #[serde(default)]
            validation_url: Option<String>,
        }
        struct ValidationVisitor;
        impl<'de> Visitor<'de> for ValidationVisitor {
            type Value = Wire;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("validation data, as an object or a string holding one")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Wire, A::Error> {
                Wire::deserialize(MapAccessDeserializer::new(map))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Wire, E> {
                // A CloudEvents validation event may carry its data as a JSON string that holds the JSON object.
                serde_json::from_str(value).map_err(|error| E::custom(format_args!("validation data string: {error}")))
            }
        }
        let wire = deserializer.deserialize_any(ValidationVisitor)?;
        Ok(Self { validation_code: wire.validation_code, validation_url: wire.validation_url })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Recording,
    Validation,
    Deletion,
    Other,
}

impl Known {
    fn of(event_type: &str) -> Self {
        if event_type.eq_ignore_ascii_case(RECORDING_FILE_STATUS_UPDATED_EVENT) {
            Self::Recording
        } else if event_type.eq_ignore_ascii_case(SUBSCRIPTION_VALIDATION_EVENT) {
            Self::Validation
        } else if event_type.eq_ignore_ascii_case(SUBSCRIPTION_DELETED_EVENT) {
            Self::Deletion
        } else {
            Self::Other
        }
    }
}

struct Context<'a> {
    schema: Schema,
    speculate: bool,
    /// Recording data that does not fit becomes [`EventData::Rejected`] instead of an error.
    tolerant: bool,
    speculated: &'a Cell<bool>,
}

fn parse(body: &[u8], context: &Context<'_>) -> Result<Vec<Event>, Error> {
    // One UTF-8 check of the whole body is cheaper than checking each string as it is parsed.
    let text = std::str::from_utf8(body).map_err(|error| Error::invalid_utf8(body, error.valid_up_to()))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let events = BatchSeed(context).deserialize(&mut deserializer).map_err(|error| Error::from_json(&error))?;
    deserializer.end().map_err(|error| Error::from_json(&error))?;
    Ok(events)
}

struct BatchSeed<'c, 'a>(&'c Context<'a>);

impl<'de> DeserializeSeed<'de> for BatchSeed<'_, '_> {
    type Value = Vec<Event>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_, '_> {
    type Value = Vec<Event>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object or an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(256));
        while let Some(event) = seq.next_element_seed(EventSeed(self.0))? {
            events.push(event);
        }
        Ok(events)
    }

    // A lone event object is a delivery as well as an array of events.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(vec![visit_event(self.0, map)?])
    }
}

struct EventSeed<'c, 'a>(&'c Context<'a>);

impl<'de> DeserializeSeed<'de> for EventSeed<'_, '_> {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, '_> {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        visit_event(self.0, map)
    }
}

/// The envelope keys of both schemas; which ones count depends on the schema.
enum Field {
    Id,
    Subject,
    Data,
    Topic,
    EventType,
    EventTime,
    DataVersion,
    Source,
    Type,
    Time,
    Ignored,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Field, E> {
                Ok(match value {
                    "id" => Field::Id,
                    "subject" => Field::Subject,
                    "data" => Field::Data,
                    "topic" => Field::Topic,
                    "eventType" => Field::EventType,
                    "eventTime" => Field::EventTime,
                    "dataVersion" => Field::DataVersion,
                    "source" => Field::Source,
                    "type" => Field::Type,
                    "time" => Field::Time,
                    _ => Field::Ignored,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

enum DataSlot<'de> {
    Missing,
    Recording(RecordingFileStatusUpdated),
    Validation(SubscriptionValidation),
    Owned(Box<RawValue>),
    Borrowed(&'de RawValue),
}

fn set<'de, A: MapAccess<'de>>(slot: &mut Option<String>, name: &'static str, map: &mut A) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The event types an event usually carries, kept as `'static` strings instead of a copy per event.
const KNOWN_EVENT_TYPES: [&str; 3] =
    [RECORDING_FILE_STATUS_UPDATED_EVENT, SUBSCRIPTION_VALIDATION_EVENT, SUBSCRIPTION_DELETED_EVENT];
/// The data versions Event Grid sends for the events above.
const KNOWN_DATA_VERSIONS: [&str; 3] = ["1.0", "1", "2.0"];

/// Reads a string, answered as one of `known` when it is exactly that string (no allocation), else as a copy.
struct KnownSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KnownSeed {
    type Value = Cow<'static, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KnownSeed {
    type Value = Cow<'static, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(match self.0.iter().find(|known| **known == value) {
            Some(known) => Cow::Borrowed(known),
            None => Cow::Owned(value.to_owned()),
        })
    }
}

fn set_known<'de, A: MapAccess<'de>>(
    slot: &mut Option<Cow<'static, str>>,
    name: &'static str,
    known: &'static [&'static str],
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value_seed(KnownSeed(known))?);
    Ok(())
}

fn visit_event<'de, A: MapAccess<'de>>(context: &Context<'_>, mut map: A) -> Result<Event, A::Error> {
    let event_grid = context.schema == Schema::EventGrid;
    let (mut id, mut subject, mut time, mut source) = (None, None, None, None);
    let (mut event_type, mut data_version) = (None, None);
    let mut data = DataSlot::Missing;
    while let Some(field) = map.next_key::<Field>()? {
        match field {
            Field::Id => set(&mut id, "id", &mut map)?,
            Field::Subject => set(&mut subject, "subject", &mut map)?,
            Field::Topic if event_grid => set(&mut source, "topic", &mut map)?,
            Field::EventType if event_grid => set_known(&mut event_type, "eventType", &KNOWN_EVENT_TYPES, &mut map)?,
            Field::EventTime if event_grid => set(&mut time, "eventTime", &mut map)?,
            Field::DataVersion if event_grid => {
                set_known(&mut data_version, "dataVersion", &KNOWN_DATA_VERSIONS, &mut map)?
            }
            Field::Source if !event_grid => set(&mut source, "source", &mut map)?,
            Field::Type if !event_grid => set_known(&mut event_type, "type", &KNOWN_EVENT_TYPES, &mut map)?,
            Field::Time if !event_grid => set(&mut time, "time", &mut map)?,
            Field::Data => {
                if !matches!(data, DataSlot::Missing) {
                    return Err(de::Error::duplicate_field("data"));
                }
                let speculate = context.speculate
                    && subject.as_deref().is_some_and(|subject: &str| subject.starts_with("/recording/"));
                data = match event_type.as_deref().map(Known::of) {
                    Some(Known::Recording) if context.tolerant => DataSlot::Borrowed(map.next_value()?),
                    Some(Known::Recording) => DataSlot::Recording(map.next_value()?),
                    Some(Known::Validation) => DataSlot::Validation(map.next_value()?),
                    Some(Known::Deletion | Known::Other) => DataSlot::Owned(map.next_value()?),
                    None if speculate => {
                        context.speculated.set(true);
                        DataSlot::Recording(map.next_value()?)
                    }
                    None => DataSlot::Borrowed(map.next_value()?),
                };
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }

    let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
    let event_type =
        event_type.ok_or_else(|| de::Error::missing_field(if event_grid { "eventType" } else { "type" }))?;
    if event_grid {
        // In the Event Grid schema `topic` and `metadataVersion` are optional, the rest of the envelope is required.
        if subject.is_none() {
            return Err(de::Error::missing_field("subject"));
        }
        if time.is_none() {
            return Err(de::Error::missing_field("eventTime"));
        }
        if data_version.is_none() {
            return Err(de::Error::missing_field("dataVersion"));
        }
    } else if source.is_none() {
        return Err(de::Error::missing_field("source"));
    }

    let known = Known::of(&event_type);
    let data = match (data, known) {
        (DataSlot::Recording(data), Known::Recording) => EventData::RecordingFileStatusUpdated(Box::new(data)),
        (DataSlot::Recording(_), _) => {
            // A wrong guess: the caller parses again without guessing.
            return Err(de::Error::custom("data parsed as a recording event, but the event type differs"));
        }
        (DataSlot::Validation(validation), _) => EventData::SubscriptionValidation(validation),
        (DataSlot::Owned(raw), Known::Deletion) => EventData::SubscriptionDeletion(Some(raw)),
        (DataSlot::Owned(raw), _) => EventData::Other(Some(raw)),
        (DataSlot::Borrowed(raw), Known::Recording) if context.tolerant => {
            match typed_data::<RecordingFileStatusUpdated, de::value::Error>(raw, &event_type) {
                Ok(data) => EventData::RecordingFileStatusUpdated(Box::new(data)),
                Err(error) => EventData::Rejected(RejectedData { reason: error.to_string(), raw: raw.to_owned() }),
            }
        }
        (DataSlot::Borrowed(raw), Known::Recording) => {
            EventData::RecordingFileStatusUpdated(Box::new(typed_data(raw, &event_type)?))
        }
        (DataSlot::Borrowed(raw), Known::Validation) => {
            EventData::SubscriptionValidation(typed_data(raw, &event_type)?)
        }
        (DataSlot::Borrowed(raw), Known::Deletion) => EventData::SubscriptionDeletion(Some(raw.to_owned())),
        (DataSlot::Borrowed(raw), Known::Other) => EventData::Other(Some(raw.to_owned())),
        (DataSlot::Missing, Known::Recording | Known::Validation) => return Err(de::Error::missing_field("data")),
        (DataSlot::Missing, _) if event_grid => return Err(de::Error::missing_field("data")),
        (DataSlot::Missing, Known::Deletion) => EventData::SubscriptionDeletion(None),
        (DataSlot::Missing, _) => EventData::Other(None),
    };
    Ok(Event { id, event_type, subject, time, source, data_version, data })
}

/// Types data that was kept raw because it came before the event type.
fn typed_data<'de, T: Deserialize<'de>, E: de::Error>(raw: &'de RawValue, event_type: &str) -> Result<T, E> {
    serde_json::from_str(raw.get()).map_err(|error| {
        // The position inside `data` would mislead next to the body's; the outer parser adds the event's position.
        let full = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let detail = full.strip_suffix(&suffix).unwrap_or(&full);
        E::custom(format_args!("invalid data for {event_type}: {detail}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDING_DATA: &str = r#"{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d1","index":0}]},
        "recordingStartTime":"2021-07-27T15:20:23.6089755Z"}"#;

    fn eg(id: &str, subject: &str, event_type: &str, data: &str) -> String {
        format!(
            r#"{{"id":"{id}","subject":"{subject}","data":{data},"eventType":"{event_type}","dataVersion":"1.0","eventTime":"2021-07-27T15:20:34Z"}}"#
        )
    }

    #[test]
    fn a_wrong_guess_from_the_subject_still_keeps_the_raw_data() {
        let body = format!("[{}]", eg("1", "/recording/call/c1", "Contoso.Other", r#"{"x":[1,2]}"#));
        let events = Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap();
        match events.as_slice()[0].data() {
            EventData::Other(Some(raw)) => assert_eq!(raw.get(), r#"{"x":[1,2]}"#),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn recording_data_before_the_type_is_typed_with_or_without_a_recording_subject() {
        for subject in ["/recording/call/c1", "/elsewhere"] {
            let body = format!("[{}]", eg("1", subject, RECORDING_FILE_STATUS_UPDATED_EVENT, RECORDING_DATA));
            let events = Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap();
            let data = events.as_slice()[0].recording_file_status_updated().expect("typed");
            assert_eq!(data.chunks()[0].document_id(), "d1");
        }
    }

    #[test]
    fn invalid_recording_data_is_rejected_alone_naming_the_field() {
        let bad = r#"{"recordingStorageInfo":{"recordingChunks":[{"index":0}]},"recordingStartTime":"t"}"#;
        for subject in ["/recording/call/c1", "/elsewhere"] {
            let body = format!(
                "[{},{},{}]",
                eg("1", subject, RECORDING_FILE_STATUS_UPDATED_EVENT, RECORDING_DATA),
                eg("2", subject, RECORDING_FILE_STATUS_UPDATED_EVENT, bad),
                eg("3", subject, RECORDING_FILE_STATUS_UPDATED_EVENT, RECORDING_DATA),
            );
            let events = Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap();
            let ids: Vec<(&str, bool)> =
                events.iter().map(|e| (e.id(), e.recording_file_status_updated().is_some())).collect();
            assert_eq!(ids, [("1", true), ("2", false), ("3", true)], "{subject}");
            let rejected = events.as_slice()[1].rejected().expect("rejected");
            assert_eq!(
                rejected.reason(),
                "invalid data for Microsoft.Communication.RecordingFileStatusUpdated: missing field `documentId`"
            );
            assert_eq!(rejected.raw().get(), bad);
        }
    }

    #[test]
    fn a_batch_that_is_not_json_still_fails_whole() {
        let body = format!("[{},", eg("1", "/recording/call/c1", RECORDING_FILE_STATUS_UPDATED_EVENT, RECORDING_DATA));
        let error = Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MalformedJson);
    }

    #[test]
    fn missing_required_envelope_fields_are_named() {
        let cases = [
            (Schema::EventGrid, r#"{"subject":"s","eventType":"t","eventTime":"x","dataVersion":"1","data":{}}"#, "id"),
            (Schema::EventGrid, r#"{"id":"1","eventType":"t","eventTime":"x","dataVersion":"1","data":{}}"#, "subject"),
            (Schema::EventGrid, r#"{"id":"1","subject":"s","eventTime":"x","dataVersion":"1","data":{}}"#, "eventType"),
            (Schema::EventGrid, r#"{"id":"1","subject":"s","eventType":"t","dataVersion":"1","data":{}}"#, "eventTime"),
            (Schema::EventGrid, r#"{"id":"1","subject":"s","eventType":"t","eventTime":"x","data":{}}"#, "dataVersion"),
            (
                Schema::EventGrid,
                r#"{"id":"1","subject":"s","eventType":"t","eventTime":"x","dataVersion":"1"}"#,
                "data",
            ),
            (Schema::CloudEvents, r#"{"id":"1","type":"t"}"#, "source"),
            (Schema::CloudEvents, r#"{"id":"1","source":"s"}"#, "type"),
        ];
        for (schema, body, field) in cases {
            let error = Events::from_slice(schema, body.as_bytes()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidEvent, "{body}");
            assert!(error.to_string().contains(&format!("missing field `{field}`")), "{error}");
        }
    }

    #[test]
    fn cloud_events_validation_data_may_be_a_string_holding_json() {
        let body = format!(
            r#"{{"id":"1","source":"s","type":"{SUBSCRIPTION_VALIDATION_EVENT}","data":"{{\"validationCode\":\"abc\"}}"}}"#
        );
        let events = Events::from_slice(Schema::CloudEvents, body.as_bytes()).unwrap();
        assert_eq!(events.validation_code(), Some("abc"));
    }

    #[test]
    fn non_event_json_is_refused_with_its_shape() {
        for body in ["1", "\"x\"", "[1]", "null", "[{}, 2]"] {
            let error = Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidEvent, "{body}");
        }
        let error = Events::from_slice(Schema::EventGrid, b"[] x").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MalformedJson);
    }
}
