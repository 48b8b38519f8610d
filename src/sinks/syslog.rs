//! Syslog delivery: RFC 5424 messages over TCP, framed by RFC 6587 octet
//! counting (`<length> <message>`), the event's JSON as the message and its
//! `seq`, type and id in structured data, so a receiver that re-frames or
//! re-orders can still tell a gap.
//!
//! TCP syslog has no acknowledgement: an event counts as delivered once the
//! whole frame is written to the socket. Before each write the connection
//! is checked for a close by the peer (a receiver restarted since the last
//! write), so a restart loses nothing but what was in flight at the moment
//! it died.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::domain::event::Event;

/// How long connecting or writing one frame may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The structured-data id: ours, under the documentation's enterprise number.
pub const SD_ID: &str = "tms@32473";

/// The RFC 5424 message of an event (without the octet count).
pub fn message(event: &Event, hostname: &str, pid: u32) -> Result<String, serde_json::Error> {
    // Facility local0; severity notice for a failed login, info otherwise.
    let severity = if event.event_type == "session.login_failed" {
        5
    } else {
        6
    };
    let pri = 16 * 8 + severity;
    let json = serde_json::to_string(event)?;
    Ok(format!(
        "<{pri}>1 {} {hostname} tms-dashboard {pid} {} [{SD_ID} seq=\"{}\" event_id=\"{}\" type=\"{}\"] {json}",
        event.occurred_at, event.event_type, event.seq, event.event_id, event.event_type
    ))
}

/// An RFC 6587 octet-counted frame.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

/// This host's name as syslog wants it (printable ASCII, no spaces), or `-`.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

/// One TCP connection to a syslog receiver, opened when needed.
pub struct SyslogClient {
    address: String,
    hostname: String,
    stream: Option<TcpStream>,
}

impl SyslogClient {
    pub fn new(address: String) -> Self {
        SyslogClient {
            address,
            hostname: hostname(),
            stream: None,
        }
    }

    pub async fn send(&mut self, event: &Event) -> Result<(), String> {
        let frame =
            frame(&message(event, &self.hostname, std::process::id()).map_err(|e| e.to_string())?);
        if self.stream.as_ref().is_some_and(closed_by_peer) {
            self.stream = None;
        }
        if self.stream.is_none() {
            let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(&self.address))
                .await
                .map_err(|_| {
                    format!(
                        "connecting to {} took more than {} s",
                        self.address,
                        TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("cannot connect to {}: {e}", self.address))?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("no connection".into());
        };
        let written = tokio::time::timeout(TIMEOUT, stream.write_all(&frame)).await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.stream = None;
                Err(format!("writing to {} failed: {e}", self.address))
            }
            Err(_) => {
                self.stream = None;
                Err(format!(
                    "writing to {} took more than {} s",
                    self.address,
                    TIMEOUT.as_secs()
                ))
            }
        }
    }
}

/// True when the receiver closed the connection (or sent something, which
/// a syslog receiver never does: start afresh either way).
fn closed_by_peer(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_is_rfc_5424_with_the_seq_in_structured_data_and_octet_counted() {
        let event = Event {
            event_id: uuid::Uuid::nil(),
            seq: 7,
            event_type: "job.created".into(),
            occurred_at: "2026-12-04T02:00:00.000Z".into(),
            actor: Some("ann".into()),
            subject: json!({"job_id": "j"}),
            data: json!({}),
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        let m = message(&event, "host1", 42).unwrap();
        assert!(m.starts_with(
            "<134>1 2026-12-04T02:00:00.000Z host1 tms-dashboard 42 job.created [tms@32473 seq=\"7\" event_id=\"00000000-0000-0000-0000-000000000000\" type=\"job.created\"] {\"event_id\""
        ), "{m}");
        let f = frame(&m);
        assert_eq!(f, format!("{} {m}", m.len()).into_bytes());
    }
}
