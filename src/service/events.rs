//! The event feed (SPEC §15): reading it, checking its chain, and what the
//! sinks delivered. Events are written by the store, with their changes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Actor, Service};
use crate::domain::event::{first_break, Event, GENESIS_HASH};
use crate::error::{Error, Result};
use crate::sinks::SinkStatus;
use crate::store::Db;

/// The most events one page holds, and how many a page holds by default.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

/// `GET /api/v1/events` as sent: text, so a bad value gets our error.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with a greater `seq` (default 0: from the first).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9223372036854775807_i64, example = 0)]
    #[serde(default)]
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 100)]
    #[serde(default)]
    pub limit: Option<String>,
}

impl EventsQuery {
    /// `(after, limit)`, or `400 invalid_query` naming the parameter.
    pub fn parse(&self) -> Result<(i64, u32)> {
        let present = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let after = match present(&self.after) {
            None => 0,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    return Err(Error::InvalidQuery(format!(
                        "after: {s:?} is not a seq (a whole number, 0 or more)"
                    )))
                }
            },
        };
        let limit = match present(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Error::InvalidQuery(format!(
                        "limit: {s:?} is not a whole number from 1 to {MAX_LIMIT}"
                    )))
                }
            },
        };
        Ok((after, limit))
    }
}

/// One page of the feed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<crate::http::schema::EventDoc>)]
    pub events: Vec<Event>,
    /// Ask with `after` set to this for the next page (the last `seq`
    /// here, or `after` itself when there was nothing new).
    pub next_after: i64,
}

/// What `GET /api/v1/sinks` answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SinkList {
    pub sinks: Vec<SinkStatus>,
}

/// The outcome of re-computing the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { events: i64 },
    Broken { seq: i64, why: &'static str },
}

/// Re-computes the whole chain, a page at a time.
pub async fn verify_chain(db: &Db) -> Result<ChainCheck> {
    let mut before = (0i64, GENESIS_HASH.to_owned());
    loop {
        let page = db.events_after(before.0, MAX_LIMIT).await?;
        if let Some((seq, why)) = first_break((before.0, &before.1), &page) {
            return Ok(ChainCheck::Broken { seq, why });
        }
        match page.last() {
            Some(last) => before = (last.seq, last.hash.clone()),
            None => break,
        }
    }
    // A missing last event leaves no gap behind it: the head still counts it.
    if db.last_event_seq().await? > before.0 {
        return Ok(ChainCheck::Broken {
            seq: before.0 + 1,
            why: "missing: the chain's head counts more events",
        });
    }
    Ok(ChainCheck::Intact { events: before.0 })
}

impl Service {
    /// A page of the feed (admins, auditors and the command line).
    pub async fn events(&self, actor: &Actor, after: i64, limit: u32) -> Result<EventPage> {
        actor.require_sees_all()?;
        let events = self.db.events_after(after, limit).await?;
        let next_after = events.last().map_or(after, |e| e.seq);
        Ok(EventPage { events, next_after })
    }

    /// Each sink's position and health (admins and the command line).
    pub async fn sink_statuses(&self, actor: &Actor) -> Result<SinkList> {
        actor.require_admin()?;
        Ok(SinkList {
            sinks: crate::sinks::statuses(&self.db, self.sinks()).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<&str>, limit: Option<&str>) -> Result<(i64, u32)> {
        EventsQuery {
            after: after.map(str::to_owned),
            limit: limit.map(str::to_owned),
        }
        .parse()
    }

    #[test]
    fn after_and_limit_take_their_ranges_only() {
        assert_eq!(query(None, None).unwrap(), (0, 100));
        assert_eq!(query(Some("7"), Some("1000")).unwrap(), (7, 1000));
        assert_eq!(query(Some("0"), Some("1")).unwrap(), (0, 1));
        for (after, limit) in [
            (Some("-1"), None),
            (Some("abc"), None),
            (Some("1.5"), None),
            (None, Some("0")),
            (None, Some("1001")),
            (None, Some("ten")),
        ] {
            let e = query(after, limit).unwrap_err();
            assert!(
                matches!(e, Error::InvalidQuery(_)),
                "{after:?} {limit:?}: {e}"
            );
        }
    }
}
