//! The revocation feed: what a resource server reads from the authorization server to forget
//! cached introspection answers as soon as a token stops being live, instead of when its
//! cache entry ends.
//!
//! `POST /revocations` with the resource server's introspection credentials and an optional
//! `after` (a cursor from an earlier answer). Without `after` the answer only gives the
//! current cursor. Events are in id order; each names what ended: one token (`jti`), a
//! grant (`sub` and `client_id`), a user (`sub`) or a client (`client_id`).

use serde::{Deserialize, Serialize};

/// Events per answer; `more` says when others follow.
pub const PAGE: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedAnswer {
    /// Where the next read starts (`after`).
    pub cursor: i64,
    #[serde(default)]
    pub events: Vec<Event>,
    /// More events follow this page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
    /// The reader's cursor is not in the feed any more (purged, or from another database):
    /// it may have missed events and must forget every cached answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Event {
    /// Whether a token with these claims ended with this event.
    pub fn ends(&self, jti: Option<&str>, sub: &str, client_id: &str) -> bool {
        if let Some(j) = &self.jti {
            return jti == Some(j.as_str());
        }
        match (&self.sub, &self.client_id) {
            (Some(s), Some(c)) => s == sub && c == client_id,
            (Some(s), None) => s == sub,
            (None, Some(c)) => c == client_id,
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(jti: Option<&str>, sub: Option<&str>, client_id: Option<&str>) -> Event {
        Event {
            id: 1,
            jti: jti.map(Into::into),
            sub: sub.map(Into::into),
            client_id: client_id.map(Into::into),
        }
    }

    #[test]
    fn an_event_ends_exactly_what_it_names() {
        let token = (Some("j1"), "alice", "app");
        let ends = |e: Event| e.ends(token.0, token.1, token.2);
        assert!(ends(event(Some("j1"), None, None)));
        assert!(!ends(event(Some("j2"), None, None)));
        // A jti names one token, whatever else the event says.
        assert!(!ends(event(Some("j2"), Some("alice"), Some("app"))));
        assert!(ends(event(None, Some("alice"), Some("app"))));
        assert!(!ends(event(None, Some("alice"), Some("other"))));
        assert!(ends(event(None, Some("alice"), None)));
        assert!(!ends(event(None, Some("bob"), None)));
        assert!(ends(event(None, None, Some("app"))));
        assert!(!ends(event(None, None, None)));
        assert!(!event(Some("j1"), None, None).ends(None, "alice", "app"));
    }

    #[test]
    fn the_answer_round_trips_and_omits_false_flags() {
        let a = FeedAnswer {
            cursor: 7,
            events: vec![event(None, Some("u"), None)],
            more: false,
            reset: false,
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, r#"{"cursor":7,"events":[{"id":1,"sub":"u"}]}"#);
        assert_eq!(serde_json::from_str::<FeedAnswer>(&text).unwrap(), a);
    }
}
