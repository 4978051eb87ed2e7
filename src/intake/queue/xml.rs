//! The queue service's XML: a `QueueMessagesList` read into [`QueueMessage`]s, and a Put Message body.

use std::time::SystemTime;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::{Error, ErrorKind};
use super::QueueMessage;

/// Reads a Get Messages or Peek Messages answer (`QueueMessagesList/QueueMessage/{MessageId, InsertionTime,
/// PopReceipt, DequeueCount, MessageText, …}`); elements it does not know are skipped.
pub(crate) fn parse_messages(xml: &str) -> Result<Vec<QueueMessage>, Error> {
    let bad = |error: &dyn std::fmt::Display| {
        Error::new(ErrorKind::Xml, "the queue's message list is not readable XML").with_source(error.to_string())
    };
    let mut reader = Reader::from_str(xml);
    let mut messages = Vec::new();
    let mut current: Option<QueueMessage> = None;
    // The element whose text is being read, and that text still escaped (entity references kept as written).
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|error| bad(&error))? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if name == "QueueMessage" {
                    current = Some(QueueMessage::default());
                } else if current.is_some() {
                    field = Some(name);
                    text.clear();
                }
            }
            Event::Text(chunk) if field.is_some() => {
                text.push_str(&chunk.decode().map_err(|error| bad(&error))?);
            }
            Event::CData(chunk) if field.is_some() => {
                // CDATA is literal: escape it so that the one unescape below gives it back unchanged.
                let raw = chunk.decode().map_err(|error| bad(&error))?;
                text.push_str(&quick_xml::escape::escape(raw.as_ref()));
            }
            Event::GeneralRef(reference) if field.is_some() => {
                text.push('&');
                text.push_str(&reference.decode().map_err(|error| bad(&error))?);
                text.push(';');
            }
            Event::End(end) => {
                let name = end.local_name();
                if name.as_ref() == b"QueueMessage" {
                    messages.extend(current.take());
                } else if let (Some(message), Some(name)) = (current.as_mut(), field.take()) {
                    let value = quick_xml::escape::unescape(&text).map_err(|error| bad(&error))?;
                    set(message, &name, value.into_owned())?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(messages)
}

fn set(message: &mut QueueMessage, field: &str, value: String) -> Result<(), Error> {
    match field {
        "MessageId" => message.id = value,
        "PopReceipt" => message.pop_receipt = value,
        "MessageText" => message.text = value,
        "DequeueCount" => {
            message.dequeue_count = value.trim().parse().map_err(|_| {
                Error::new(ErrorKind::Xml, format!("the queue's DequeueCount is not a number: {value:?}"))
            })?
        }
        "InsertionTime" => message.insertion_time = parse_time(&value),
        _ => {}
    }
    Ok(())
}

/// The service writes times as RFC 1123 dates (`Mon, 07 Dec 2026 01:00:00 GMT`).
fn parse_time(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// The body of a Put Message request carrying `text` as it is.
pub(crate) fn put_message_body(text: &str) -> String {
    format!("<QueueMessage><MessageText>{}</MessageText></QueueMessage>", quick_xml::escape::escape(text))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The shape of a Get Messages answer, as the Queue service REST reference documents it.
    const LIST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<QueueMessagesList>
  <QueueMessage>
    <MessageId>5974b586-0df3-4e2d-ad0c-18e3892bfca2</MessageId>
    <InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime>
    <ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime>
    <PopReceipt>YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw</PopReceipt>
    <TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible>
    <DequeueCount>3</DequeueCount>
    <MessageText>{"a":"&lt;b&gt; &amp; &#x41;"}</MessageText>
  </QueueMessage>
  <QueueMessage>
    <MessageId>2</MessageId><PopReceipt>p2</PopReceipt><DequeueCount>1</DequeueCount>
    <MessageText><![CDATA[<raw> &amp;]]></MessageText>
  </QueueMessage>
</QueueMessagesList>"#;

    #[test]
    fn a_list_of_messages_with_escapes_and_cdata() {
        let messages = parse_messages(LIST).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].id, "5974b586-0df3-4e2d-ad0c-18e3892bfca2");
        assert_eq!(messages[0].pop_receipt, "YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw");
        assert_eq!(messages[0].dequeue_count, 3);
        assert_eq!(messages[0].text, r#"{"a":"<b> & A"}"#);
        assert_eq!(messages[0].insertion_time, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_255_122_270)));
        assert_eq!((messages[1].text.as_str(), messages[1].insertion_time), ("<raw> &amp;", None));
    }

    #[test]
    fn an_empty_list() {
        let empty = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList />";
        assert!(parse_messages(empty).unwrap().is_empty());
        assert!(parse_messages("<QueueMessagesList></QueueMessagesList>").unwrap().is_empty());
    }

    #[test]
    fn broken_xml_and_counts_are_errors() {
        let error = parse_messages("<QueueMessagesList><QueueMessage><MessageId>1</Wrong>").unwrap_err();
        assert_eq!(error.to_string(), "the queue's message list is not readable XML");
        let error = parse_messages("<QueueMessagesList><QueueMessage><DequeueCount>x</DequeueCount></QueueMessage>")
            .unwrap_err();
        assert_eq!(error.to_string(), "the queue's DequeueCount is not a number: \"x\"");
    }

    #[test]
    fn put_bodies_escape_the_text() {
        assert_eq!(
            put_message_body(r#"{"a":"<&>"}"#),
            "<QueueMessage><MessageText>{&quot;a&quot;:&quot;&lt;&amp;&gt;&quot;}</MessageText></QueueMessage>"
        );
        let round_trip = parse_messages(&format!("<QueueMessagesList>{}</QueueMessagesList>", put_message_body("<&>")));
        assert_eq!(round_trip.unwrap()[0].text, "<&>");
    }
}
