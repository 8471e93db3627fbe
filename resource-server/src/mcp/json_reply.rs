//! Streamable HTTP lets a server answer a POST with `application/json` or with an event
//! stream; rmcp's session mode always streams. A stream whose first message is the request's
//! own JSON-RPC response is sent as `application/json` instead: every client accepts it
//! (the transport requires `Accept` to list both), and a person with curl can read it.
//! A stream that carries anything before its response (progress, a request to the client)
//! passes through as it is, from its first byte.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;

/// How much of a stream is held while looking for its first message; beyond it, the
/// stream passes through.
const MAX_HELD: usize = 4 << 20;

/// Whether `req` accepts a JSON answer: a POST whose `Accept` lists `application/json`.
pub fn wanted(req: &Request) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.split(';').next().unwrap_or_default().trim();
                t.eq_ignore_ascii_case("application/json") || t == "*/*"
            })
}

/// The handler's answer `res` to a request that accepts JSON (`wanted`), as JSON when it
/// can be.
pub async fn into_json(res: Response) -> Response {
    if !is_event_stream(&res) || res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let mut stream = body.into_data_stream();
    let mut held: Vec<u8> = Vec::new();
    let mut scanned = 0;
    loop {
        while let Some((len, sep)) = event_end(&held[scanned..]) {
            let event = &held[scanned..scanned + len];
            scanned += len + sep;
            match data_of(event) {
                // Priming events and keep-alive comments carry no message.
                None => continue,
                Some(data) if is_response(&data) => {
                    parts.headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    parts.headers.remove(header::CONTENT_LENGTH);
                    return Response::from_parts(parts, Body::from(data));
                }
                Some(_) => return pass_through(parts, held, stream),
            }
        }
        if held.len() > MAX_HELD {
            return pass_through(parts, held, stream);
        }
        match stream.next().await {
            Some(Ok(chunk)) => held.extend_from_slice(&chunk),
            // The stream ended (or broke) before a message: send what came, as it came.
            _ => return Response::from_parts(parts, Body::from(held)),
        }
    }
}

/// Whether the handler answered with an SSE stream.
pub fn is_event_stream(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

fn pass_through(
    parts: axum::http::response::Parts,
    held: Vec<u8>,
    rest: axum::body::BodyDataStream,
) -> Response {
    let head = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(held)) });
    Response::from_parts(parts, Body::from_stream(head.chain(rest)))
}

/// The length of the first complete event in `buf` and of the blank line that ends it.
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = memchr::memmem::find(buf, b"\n\n");
    // A CRLF blank line, if any, only matters before the first LF one.
    let crlf = memchr::memmem::find(
        &buf[..lf.map_or(buf.len(), |i| (i + 3).min(buf.len()))],
        b"\r\n\r\n",
    );
    match (lf, crlf) {
        (Some(a), Some(b)) if b <= a => Some((b, 4)),
        (Some(a), _) => Some((a, 2)),
        (None, b) => b.map(|b| (b, 4)),
    }
}

/// An event's data lines joined (SSE: one `data:` field per line), or none when empty.
fn data_of(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let mut lines = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d));
    // Nearly always one line: no list to join.
    let mut data = lines.next()?.to_owned();
    for line in lines {
        data.push('\n');
        data.push_str(line);
    }
    (!data.trim().is_empty()).then_some(data)
}

/// A JSON-RPC response (or error response) to a request: an id, and a result or an error.
fn is_response(data: &str) -> bool {
    /// Which members a message has; their values are skipped, not built.
    #[derive(serde::Deserialize)]
    struct Members {
        #[serde(default, deserialize_with = "present")]
        id: bool,
        #[serde(default, deserialize_with = "present")]
        method: bool,
        #[serde(default, deserialize_with = "present")]
        result: bool,
        #[serde(default, deserialize_with = "present")]
        error: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| true)
    }
    serde_json::from_str::<Members>(data).is_ok_and(|m| m.id && !m.method && (m.result || m.error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_their_data() {
        let s =
            b"id: 0\nretry: 3000\ndata:\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let (len, sep) = event_end(s).unwrap();
        assert_eq!(data_of(&s[..len]), None, "a priming event has no message");
        let rest = &s[len + sep..];
        let (len, _) = event_end(rest).unwrap();
        let data = data_of(&rest[..len]).unwrap();
        assert!(is_response(&data));
        assert!(!is_response(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#
        ));
        assert!(!is_response(
            r#"{"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{}}"#
        ));
        assert_eq!(event_end(b"data: x\r\n\r\n"), Some((7, 4)));
        assert_eq!(event_end(b"data: partial"), None);
    }
}
