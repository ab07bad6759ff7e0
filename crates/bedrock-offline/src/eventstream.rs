//! `application/vnd.amazon.eventstream` frames of a ConverseStream response, encoded with
//! `aws-smithy-eventstream` (it writes the prelude and both CRCs).

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

pub use aws_smithy_eventstream::error::Error as FrameError;

fn encode(message: &Message) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(message.payload().len() + 96);
    write_message_to(message, &mut buf)?;
    Ok(buf.freeze())
}

fn header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

/// An `event` frame: `:event-type` names the ConverseStreamOutput member, the payload is its JSON.
pub fn event_frame(
    event_type: &'static str,
    payload: &serde_json::Value,
) -> Result<Bytes, FrameError> {
    let message = Message::new(payload.to_string())
        .add_header(header(":message-type", "event"))
        .add_header(header(":event-type", event_type))
        .add_header(header(":content-type", "application/json"));
    encode(&message)
}

/// An `exception` frame, e.g. `throttlingException`, with `{"message": …}` as payload.
pub fn exception_frame(exception_type: &'static str, message: &str) -> Result<Bytes, FrameError> {
    let payload = serde_json::json!({ "message": message });
    let message = Message::new(payload.to_string())
        .add_header(header(":message-type", "exception"))
        .add_header(header(":exception-type", exception_type))
        .add_header(header(":content-type", "application/json"));
    encode(&message)
}

/// A frame whose last payload byte is flipped, so its message CRC no longer matches.
pub fn corrupt(frame: &Bytes) -> Bytes {
    let mut bytes = BytesMut::from(&frame[..]);
    // The last 4 bytes are the message CRC; the byte before them is payload.
    if let Some(i) = bytes.len().checked_sub(5) {
        bytes[i] ^= 0xff;
    }
    bytes.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    #[test]
    fn frames_round_trip_and_corruption_is_detected() {
        let frame = event_frame("messageStart", &serde_json::json!({"role": "assistant"})).unwrap();
        let msg = read_message_from(frame.clone()).unwrap();
        let names: Vec<_> = msg
            .headers()
            .iter()
            .map(|h| h.name().as_str().to_owned())
            .collect();
        assert_eq!(names, [":message-type", ":event-type", ":content-type"]);
        assert_eq!(&msg.payload()[..], br#"{"role":"assistant"}"#);

        assert!(read_message_from(corrupt(&frame)).is_err());

        let exc = exception_frame("throttlingException", "slow").unwrap();
        let msg = read_message_from(exc).unwrap();
        assert_eq!(
            msg.headers()[1].value().as_string().unwrap().as_str(),
            "throttlingException"
        );
    }
}
