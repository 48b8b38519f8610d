//! The outbox (SPEC §15): every change appends its event inside the change's
//! own write, so an event exists exactly when its change was committed.
//!
//! `seq` and the chain come from one row, `event_head`: `append` moves it
//! (`seq + 1`, the new hash) in the same transaction. On SQLite the single
//! writer already runs one write at a time; on PostgreSQL the row lock that
//! the `UPDATE` takes is held until the transaction commits, so event
//! writers of every instance take their numbers one after another in commit
//! order: a rolled-back write gives its number back, a reader never sees
//! seq N+1 before N, and `prev_hash` is always the committed previous
//! event's hash. The price is that event-writing transactions serialise
//! from their `append` to their commit: call `append` last in a write.
//!
//! Also here: each sink's stored position and its delivery lease.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::tx::{args, write_tx, Tx};
use super::{with_pool, Db};
use crate::domain::event::{chain_hash, Event, EventType, HashedPart};
use crate::error::{Error, Result};

/// An event about to be written with its change.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_type: EventType,
    /// Who made the change; `None` for the console itself.
    pub actor: Option<String>,
    pub subject: Value,
    /// The object after the change, without any secret.
    pub data: Value,
    pub occurred_at: DateTime<Utc>,
}

impl NewEvent {
    pub fn new(
        event_type: EventType,
        actor: Option<&str>,
        subject: Value,
        data: Value,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        NewEvent {
            event_type,
            actor: actor.map(str::to_owned),
            subject,
            data,
            occurred_at,
        }
    }
}

/// Off only for the benchmark's baseline (the undocumented `outbox = false`).
static OUTBOX_ON: AtomicBool = AtomicBool::new(true);

/// Turns the outbox on or off for this process (the benchmark's baseline:
/// Set Action throughput without events). Never off in normal operation.
pub fn set_outbox(on: bool) {
    OUTBOX_ON.store(on, Ordering::Relaxed);
}

/// Appends `event` to the outbox inside the caller's write: numbers it,
/// chains it to the previous event and inserts it. Returns its `seq` (0
/// when the outbox is off). Call it last in the write: on PostgreSQL it
/// holds the chain's head row until the commit.
pub(crate) async fn append(tx: &mut impl Tx, event: NewEvent) -> Result<i64> {
    if !OUTBOX_ON.load(Ordering::Relaxed) {
        return Ok(0);
    }
    let head = tx
        .fetch_optional(
            "UPDATE event_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
            &[],
        )
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the event head row is missing")))?;
    let seq: i64 = head.get(0)?;
    let prev_hash: String = head.get(1)?;
    let event_id = Uuid::now_v7();
    let occurred_at = crate::time::format_time(&event.occurred_at);
    let hash = chain_hash(
        &prev_hash,
        &HashedPart {
            event_id,
            seq,
            event_type: event.event_type.as_str(),
            occurred_at: &occurred_at,
            actor: event.actor.as_deref(),
            subject: &event.subject,
            data: &event.data,
        },
    )
    .map_err(anyhow::Error::from)?;
    let subject = serde_json::to_string(&event.subject).map_err(anyhow::Error::from)?;
    let data = serde_json::to_string(&event.data).map_err(anyhow::Error::from)?;
    tx.execute(
        "INSERT INTO events (seq, event_id, type, occurred_at, actor, subject, data, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &args![
            seq,
            event_id,
            event.event_type.as_str(),
            occurred_at,
            event.actor,
            subject,
            data,
            prev_hash,
            &hash
        ],
    )
    .await?;
    tx.execute("UPDATE event_head SET hash = $1 WHERE id = 1", &args![hash])
        .await?;
    Ok(seq)
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    event_id: Uuid,
    #[sqlx(rename = "type")]
    event_type: String,
    occurred_at: String,
    actor: Option<String>,
    subject: String,
    data: String,
    prev_hash: String,
    hash: String,
}

impl TryFrom<EventRow> for Event {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self> {
        let json = |text: &str, what: &str| {
            serde_json::from_str(text).map_err(|e| {
                Error::Internal(anyhow::anyhow!(
                    "event {} has unreadable {what}: {e}",
                    r.seq
                ))
            })
        };
        Ok(Event {
            event_id: r.event_id,
            seq: r.seq,
            event_type: r.event_type.clone(),
            occurred_at: r.occurred_at.clone(),
            actor: r.actor.clone(),
            subject: json(&r.subject, "subject")?,
            data: json(&r.data, "data")?,
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        })
    }
}

/// A sink's stored state.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkPosition {
    pub name: String,
    pub delivered_seq: i64,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SinkRow {
    name: String,
    delivered_seq: i64,
    last_error: Option<String>,
    last_success_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Up to `limit` events with `seq > after`, in `seq` order.
    #[tracing::instrument(skip_all)]
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, event_id, type, occurred_at, actor, subject, data, prev_hash, hash \
             FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter().map(Event::try_from).collect()
    }

    /// The newest event's `seq` (0 when there is none).
    #[tracing::instrument(skip_all)]
    pub async fn last_event_seq(&self) -> Result<i64> {
        let seq: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT seq FROM event_head WHERE id = 1").fetch_one(pool).await)?;
        Ok(seq)
    }

    /// How many events after `after` there are of each type.
    #[tracing::instrument(skip_all)]
    pub async fn event_counts_after(&self, after: i64) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT type, COUNT(*) FROM events WHERE seq > $1 GROUP BY type")
            .bind(after).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Every stored sink position.
    #[tracing::instrument(skip_all)]
    pub async fn sink_positions(&self) -> Result<Vec<SinkPosition>> {
        let rows: Vec<SinkRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT name, delivered_seq, last_error, last_success_at FROM sink_positions ORDER BY name")
            .fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|r| SinkPosition {
                name: r.name,
                delivered_seq: r.delivered_seq,
                last_error: r.last_error,
                last_success_at: r.last_success_at,
            })
            .collect())
    }

    /// Takes (or keeps) the delivery lease of sink `name` for `owner` until
    /// `until`, when nobody else holds an unexpired one; creates the sink's
    /// row at position 0 the first time. True when `owner` holds it.
    #[tracing::instrument(skip_all, fields(sink = name))]
    pub async fn take_sink_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        write_tx!(self, |tx| async move {
            tx.execute(
                "INSERT INTO sink_positions (name, delivered_seq) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
                &args![&name],
            )
            .await?;
            let taken = tx
                .execute(
                    "UPDATE sink_positions SET lease_owner = $2, lease_until = $3 WHERE name = $1 \
                     AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4)",
                    &args![&name, &owner, until, now],
                )
                .await?;
            Ok(taken == 1)
        })
    }

    /// The sink's position, read by its leaseholder.
    #[tracing::instrument(skip_all, fields(sink = name))]
    pub async fn sink_position(&self, name: &str) -> Result<i64> {
        let seq: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT delivered_seq FROM sink_positions WHERE name = $1")
            .bind(name).fetch_optional(pool).await)?;
        Ok(seq.unwrap_or(0))
    }

    /// Records that sink `name` delivered everything up to `seq` (and
    /// renews the lease); `delivered` says whether an event was sent (then
    /// `last_success_at` is `now` and the error clears). False when `owner`
    /// no longer holds the lease: nothing is written, and it must stop.
    #[tracing::instrument(skip_all, fields(sink = name, seq))]
    pub async fn record_sink_progress(
        &self,
        name: &str,
        owner: &str,
        seq: i64,
        delivered: bool,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        write_tx!(self, |tx| async move {
            let done = if delivered {
                tx.execute(
                    "UPDATE sink_positions SET delivered_seq = $3, lease_until = $4, last_success_at = $5, \
                     last_error = NULL WHERE name = $1 AND lease_owner = $2",
                    &args![&name, &owner, seq, until, now],
                )
                .await?
            } else {
                tx.execute(
                    "UPDATE sink_positions SET delivered_seq = $3, lease_until = $4 \
                     WHERE name = $1 AND lease_owner = $2",
                    &args![&name, &owner, seq, until],
                )
                .await?
            };
            Ok(done == 1)
        })
    }

    /// Records sink `name`'s latest failure (and renews the lease). False
    /// when `owner` no longer holds the lease.
    #[tracing::instrument(skip_all, fields(sink = name))]
    pub async fn record_sink_failure(
        &self,
        name: &str,
        owner: &str,
        error: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let (name, owner, error) = (name.to_owned(), owner.to_owned(), error.to_owned());
        write_tx!(self, |tx| async move {
            let done = tx
                .execute(
                    "UPDATE sink_positions SET last_error = $3, lease_until = $4 \
                     WHERE name = $1 AND lease_owner = $2",
                    &args![&name, &owner, &error, until],
                )
                .await?;
            Ok(done == 1)
        })
    }

    /// Gives the lease up (a clean stop), so another instance takes over at once.
    #[tracing::instrument(skip_all, fields(sink = name))]
    pub async fn release_sink_lease(&self, name: &str, owner: &str) -> Result<()> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        write_tx!(self, |tx| async move {
            tx.execute(
                "UPDATE sink_positions SET lease_owner = NULL, lease_until = NULL \
                 WHERE name = $1 AND lease_owner = $2",
                &args![&name, &owner],
            )
            .await?;
            Ok(())
        })
    }
}
