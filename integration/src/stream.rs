//! The client side of the CRI streaming protocol, as the API server speaks it to the URL that
//! CRI `Exec` (or `Attach`) returns: a WebSocket with subprotocol `v4.channel.k8s.io`. Every
//! binary message starts with a channel byte: 0 stdin (client to server), 1 stdout, 2 stderr,
//! 3 status (a JSON `metav1.Status` when the command ends), 4 terminal resize (client to server,
//! JSON `{"Width":W,"Height":H}`). v4 has no way to close stdin alone.
//!
//! Synchronous (tungstenite over a std `TcpStream`): one session per call, read with deadlines.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

/// The subprotocol asked for (and required in the answer).
pub const V4_PROTOCOL: &str = "v4.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;

/// An open streaming session and what it received so far.
pub struct StreamSession {
    ws: WebSocket<TcpStream>,
    url: String,
    /// Bytes received per channel.
    received: HashMap<u8, Vec<u8>>,
    /// The server closed the connection.
    closed: bool,
}

/// Everything a finished session received.
#[derive(Debug, Clone)]
pub struct StreamOutput {
    pub stdout: String,
    pub stderr: String,
    /// The status channel's message, parsed (`{"status":"Success"}` or a Failure with reason
    /// and causes); `Value::Null` when none came.
    pub status: serde_json::Value,
}

impl StreamOutput {
    /// The exit code a kubectl would report: 0 for `Success`, the `ExitCode` cause of a
    /// `NonZeroExitCode` failure; None for anything else.
    pub fn exit_code(&self) -> Option<i32> {
        let s = &self.status;
        match s["status"].as_str() {
            Some("Success") => Some(0),
            Some("Failure") if s["reason"] == "NonZeroExitCode" => s["details"]["causes"]
                .as_array()?
                .iter()
                .find(|c| c["reason"] == "ExitCode")
                .and_then(|c| c["message"].as_str())
                .and_then(|m| m.parse().ok()),
            _ => None,
        }
    }
}

impl StreamSession {
    /// Opens the WebSocket to `url` (the `http://` URL CRI Exec/Attach returns; its `ws://`
    /// form is used) asking for [`V4_PROTOCOL`]. Errors name the URL and what went wrong.
    pub fn connect(url: &str) -> Result<StreamSession, String> {
        let ws_url = url
            .strip_prefix("http://")
            .map(|rest| format!("ws://{rest}"))
            .ok_or_else(|| format!("{url}: not an http:// URL (TLS streaming is not set up)"))?;
        let mut req = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{url}: not a WebSocket URL: {e}"))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(V4_PROTOCOL),
        );
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| format!("{url}: no host:port"))?;
        let tcp = TcpStream::connect(&authority)
            .map_err(|e| format!("{url}: cannot connect to {authority}: {e}"))?;
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| format!("{url}: set_read_timeout: {e}"))?;
        let (ws, resp) = tungstenite::client(req, tcp)
            .map_err(|e| format!("{url}: WebSocket handshake failed: {e}"))?;
        let proto = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if proto != V4_PROTOCOL {
            return Err(format!(
                "{url}: the server chose subprotocol {proto:?}, not {V4_PROTOCOL}"
            ));
        }
        Ok(StreamSession {
            ws,
            url: url.to_string(),
            received: HashMap::new(),
            closed: false,
        })
    }

    /// Sends `data` on `channel`.
    pub fn send(&mut self, channel: u8, data: &[u8]) -> Result<(), String> {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(channel);
        frame.extend_from_slice(data);
        self.ws
            .send(Message::Binary(frame.into()))
            .map_err(|e| format!("{}: sending on channel {channel}: {e}", self.url))
    }

    /// Sends a terminal size on the resize channel, as kubectl does.
    pub fn resize(&mut self, width: u16, height: u16) -> Result<(), String> {
        let msg = format!("{{\"Width\":{width},\"Height\":{height}}}");
        self.send(RESIZE, msg.as_bytes())
    }

    /// What `channel` received so far, as text.
    pub fn text(&self, channel: u8) -> String {
        String::from_utf8_lossy(self.received.get(&channel).map_or(&[][..], |v| v)).into_owned()
    }

    /// Reads one message (or waits up to the socket's read timeout); false once the server
    /// has closed the connection.
    fn pump(&mut self) -> Result<bool, String> {
        if self.closed {
            return Ok(false);
        }
        match self.ws.read() {
            Ok(Message::Binary(b)) => {
                if let Some((&ch, data)) = b.split_first() {
                    self.received.entry(ch).or_default().extend_from_slice(data);
                }
                Ok(true)
            }
            Ok(Message::Close(_)) => {
                self.closed = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(true)
            }
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            ) => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(format!("{}: reading: {e}", self.url)),
        }
    }

    /// Reads until `channel`'s text contains `needle`; Err (with everything received) when
    /// the session ends first or `limit` passes.
    pub fn wait_for(&mut self, channel: u8, needle: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while !self.text(channel).contains(needle) {
            if !self.pump()? {
                return Err(format!(
                    "{}: the session ended before channel {channel} said {needle:?}; {:?}",
                    self.url, self.received
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: channel {channel} did not say {needle:?} within {limit:?}; got {:?}",
                    self.url,
                    self.text(channel)
                ));
            }
        }
        Ok(())
    }

    /// Reads until the server closes the session (the command ended and its status was sent);
    /// Err when that takes longer than `limit`.
    pub fn finish(mut self, limit: Duration) -> Result<StreamOutput, String> {
        let deadline = Instant::now() + limit;
        while self.pump()? {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: the session did not end within {limit:?}; stdout {:?}, stderr {:?}, \
                     status {:?}",
                    self.url,
                    self.text(STDOUT),
                    self.text(STDERR),
                    self.text(STATUS)
                ));
            }
        }
        let status_text = self.text(STATUS);
        let status = if status_text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&status_text).map_err(|e| {
                format!(
                    "{}: the status channel is not JSON ({e}): {status_text:?}",
                    self.url
                )
            })?
        };
        Ok(StreamOutput {
            stdout: self.text(STDOUT),
            stderr: self.text(STDERR),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: &str) -> StreamOutput {
        StreamOutput {
            stdout: String::new(),
            stderr: String::new(),
            status: serde_json::from_str(status).unwrap(),
        }
    }

    #[test]
    fn exit_codes_from_the_status_as_kubectl_reads_them() {
        assert_eq!(
            out(r#"{"metadata":{},"status":"Success"}"#).exit_code(),
            Some(0)
        );
        let failed = r#"{"metadata":{},"status":"Failure","message":"command terminated with
            non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":
            [{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(out(&failed.replace('\n', " ")).exit_code(), Some(3));
        let internal = r#"{"status":"Failure","reason":"InternalError","message":"boom"}"#;
        assert_eq!(out(internal).exit_code(), None);
        assert_eq!(out("null").exit_code(), None);
    }
}
