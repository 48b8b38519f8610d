//! Import of the old Flask dashboard's jobs table (SPEC §7 and §10), so its
//! history, doubled jobs included, can be audited and marked here.
//!
//! The file is opened read-only and read as a stream, a batch of rows per
//! store transaction. Each row becomes a `succeeded`, `imported` job with no
//! idempotency key; its intent is hashed with the function live jobs use, so
//! the duplicate audit compares both alike. The old page stored the cluster
//! token inside `request_payload`: the payload is redacted the moment it is
//! parsed, used only to fill in a missing column, and never stored or printed.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::domain::action::ActionCatalog;
use crate::domain::cid::{split_text, CidsInput, RawCids};
use crate::domain::fingerprint::RequestFingerprint;
use crate::domain::job::{truncate_millis, JobId};
use crate::domain::user::{Role, Username};

use crate::store::audit::ImportedJob;
use crate::store::Db;

/// Rows per store transaction.
pub const DEFAULT_BATCH: usize = 500;

/// The columns read from the old `jobs` table; others (`id`, `cid_count`,
/// `status`) are ignored.
pub const LEGACY_COLUMNS: [&str; 9] = [
    "job_id",
    "user_id",
    "action_code",
    "action_name",
    "cids",
    "cluster_url",
    "request_payload",
    "response_summary",
    "created_at",
];

/// Without these a row cannot be imported, or not twice safely.
const REQUIRED_COLUMNS: [&str; 3] = ["job_id", "user_id", "created_at"];

/// The cluster imported jobs get when the old row names no URL at all.
pub const UNKNOWN_CLUSTER: &str = "legacy";

/// Member names whose values are secrets, compared without case (Unicode
/// case folding, so `ſ` counts as `s`), `-` or `_`.
const SECRET_MEMBERS: [&str; 4] = ["token", "password", "authorization", "apikey"];

/// What the importer needs from the configuration.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Write nothing; report what would be imported.
    pub dry_run: bool,
    pub batch: usize,
    /// Configured clusters as `(name, base_url)`: a legacy URL equal to a
    /// base URL maps to that cluster's name.
    pub clusters: Vec<(String, String)>,
    /// Fills in an action's code or name when the row has only the other.
    pub catalog: ActionCatalog,
    /// Users to take as present without asking the store (a dry run on an
    /// empty store: the real run creates `admin` before importing).
    pub assume_users: Vec<String>,
}

/// What happened, as it happens.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    /// The file is open and holds this many rows.
    Started { total: u64 },
    /// Rows read so far.
    Progress(u64),
    /// A row left out, and why (`row` is the old job id, or `row N`).
    Skipped { row: &'a str, reason: &'a str },
    /// A missing user was created (or, in a dry run, would be) as a
    /// disabled operator with no password.
    UserCreated(&'a str),
}

/// The totals of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    /// Jobs written (or, in a dry run, that would be).
    pub imported: u64,
    /// Rows whose job is in the store already.
    pub already_present: u64,
    /// Rows that could not be read as a job.
    pub invalid: u64,
    pub users_created: u64,
}

/// One row of the old table; every column read as text, absent ones null.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct LegacyRow {
    pub job_id: Option<String>,
    pub user_id: Option<String>,
    pub action_code: Option<String>,
    pub action_name: Option<String>,
    pub cids: Option<String>,
    pub cluster_url: Option<String>,
    pub request_payload: Option<String>,
    pub response_summary: Option<String>,
    pub created_at: Option<String>,
}

/// Reads the file at `path` into `db` (or only reports, in a dry run).
pub async fn import_legacy(
    db: &Db,
    path: &Path,
    options: &ImportOptions,
    mut on_event: impl FnMut(ImportEvent<'_>),
) -> anyhow::Result<ImportSummary> {
    if !path.is_file() {
        anyhow::bail!("{} is not a file", path.display());
    }
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        // The read stays open while batches are written: not a slow query.
        .disable_statement_logging();
    let mut conn = SqliteConnection::connect_with(&connect)
        .await
        .with_context(|| format!("Failed to open {} as an SQLite file", path.display()))?;
    let present: HashSet<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('jobs')")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("Failed to read the jobs table of {}", path.display()))?
        .into_iter()
        .map(|n: String| n.to_ascii_lowercase())
        .collect();
    if present.is_empty() {
        anyhow::bail!("{} has no jobs table", path.display());
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|c| !present.contains(*c))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the jobs table of {} lacks the column(s) {}",
            path.display(),
            missing.join(", ")
        );
    }
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(&mut conn)
        .await
        .context("Failed to count the legacy jobs")?;
    on_event(ImportEvent::Started {
        total: u64::try_from(total).unwrap_or(0),
    });

    let select: Vec<String> = LEGACY_COLUMNS
        .iter()
        .map(|c| {
            if present.contains(*c) {
                format!("CAST(\"{c}\" AS TEXT) AS {c}")
            } else {
                format!("NULL AS {c}")
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM jobs", select.join(", "));
    let batch_size = if options.batch == 0 {
        DEFAULT_BATCH
    } else {
        options.batch
    };
    let mut importer = Importer {
        db,
        options,
        known_users: options.assume_users.iter().cloned().collect(),
        summary: ImportSummary::default(),
    };
    let mut batch: Vec<(String, ImportedJob)> = Vec::with_capacity(batch_size);
    {
        let mut rows = sqlx::query_as::<_, LegacyRow>(&sql).fetch(&mut conn);
        while let Some(row) = rows
            .try_next()
            .await
            .context("Failed to read a legacy job")?
        {
            importer.summary.rows += 1;
            let label = row_label(&row, importer.summary.rows);
            match convert(&row, options) {
                Ok(job) => batch.push((label, job)),
                Err(reason) => {
                    importer.summary.invalid += 1;
                    on_event(ImportEvent::Skipped {
                        row: &label,
                        reason: &reason,
                    });
                }
            }
            if batch.len() >= batch_size {
                importer.flush(&mut batch, &mut on_event).await?;
                on_event(ImportEvent::Progress(importer.summary.rows));
            }
        }
    }
    importer.flush(&mut batch, &mut on_event).await?;
    on_event(ImportEvent::Progress(importer.summary.rows));
    conn.close().await.ok();
    Ok(importer.summary)
}

struct Importer<'a> {
    db: &'a Db,
    options: &'a ImportOptions,
    known_users: HashSet<String>,
    summary: ImportSummary,
}

impl Importer<'_> {
    /// Creates the batch's missing users, then writes its jobs in one
    /// transaction (or, in a dry run, only checks which are present).
    async fn flush(
        &mut self,
        batch: &mut Vec<(String, ImportedJob)>,
        on_event: &mut impl FnMut(ImportEvent<'_>),
    ) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        for (_, job) in batch.iter() {
            if self.known_users.contains(&job.user) {
                continue;
            }
            if self.db.get_user(&job.user).await?.is_none() {
                if !self.options.dry_run {
                    self.create_user(&job.user).await?;
                }
                self.summary.users_created += 1;
                on_event(ImportEvent::UserCreated(&job.user));
            }
            self.known_users.insert(job.user.clone());
        }
        let inserted: Vec<bool> = if self.options.dry_run {
            let mut absent = Vec::with_capacity(batch.len());
            for (_, job) in batch.iter() {
                absent.push(
                    !self
                        .db
                        .job_present(job.job_id, job.legacy_id.as_deref())
                        .await?,
                );
            }
            absent
        } else {
            let jobs: Vec<ImportedJob> = batch.iter().map(|(_, j)| j.clone()).collect();
            self.db
                .insert_imported_jobs(&jobs)
                .await
                .context("Failed to write imported jobs")?
        };
        for ((label, _), inserted) in batch.iter().zip(inserted) {
            if inserted {
                self.summary.imported += 1;
            } else {
                self.summary.already_present += 1;
                on_event(ImportEvent::Skipped {
                    row: label,
                    reason: "already imported (its job id is in the store)",
                });
            }
        }
        batch.clear();
        Ok(())
    }

    async fn create_user(&self, name: &str) -> anyhow::Result<()> {
        let username = Username::parse(name).map_err(anyhow::Error::msg)?;
        match self
            .db
            .insert_user(&username, Role::Operator, None, true, Utc::now(), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == crate::error::ErrorCode::UserExists => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to create an imported user")),
        }
    }
}

/// How a row is named in the report: its old job id, or its position.
fn row_label(row: &LegacyRow, position: u64) -> String {
    match row.job_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.escape_debug().to_string(),
        _ => format!("row {position}"),
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// One old row as a job to import, or why it cannot be one.
pub fn convert(row: &LegacyRow, options: &ImportOptions) -> Result<ImportedJob, String> {
    // Redacted before anything else looks at it; only read for fallbacks.
    let payload = row.request_payload.as_deref().and_then(redacted_payload);
    let from_payload = |name: &str| -> Option<String> {
        match payload.as_ref()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(items) => Some(Value::Array(items.clone()).to_string()),
            _ => None,
        }
    };

    let old_id = non_empty(&row.job_id).ok_or("job_id is empty")?;
    let user = non_empty(&row.user_id).ok_or("user_id is empty")?;
    let user =
        Username::parse(user).map_err(|_| format!("user_id {user:?} is not a valid username"))?;
    let created_at = non_empty(&row.created_at).ok_or("created_at is empty")?;
    let created_at = parse_legacy_time(created_at)
        .ok_or_else(|| format!("created_at {created_at:?} is not a time this importer reads"))?;

    let cids_text = non_empty(&row.cids)
        .map(str::to_owned)
        .or_else(|| from_payload("cids"))
        .ok_or("no CIDs (cids is empty)")?;
    let cids = parse_cids(&cids_text)?;

    let (action, action_code) = resolve_action(
        non_empty(&row.action_name)
            .map(str::to_owned)
            .or_else(|| from_payload("action")),
        non_empty(&row.action_code)
            .map(str::to_owned)
            .or_else(|| from_payload("action_code")),
        &options.catalog,
    )?;

    let url = non_empty(&row.cluster_url)
        .map(str::to_owned)
        .or_else(|| from_payload("url"));
    let cluster = cluster_for_url(url.as_deref(), &options.clusters);

    let (job_id, legacy_id) = match uuid::Uuid::parse_str(old_id) {
        Ok(uuid) => (JobId::from_uuid(uuid), None),
        Err(_) => (JobId::new_at(created_at), Some(old_id.to_owned())),
    };
    let raw = RawCids::from_input(&CidsInput::List(cids.clone()));
    let fingerprint = RequestFingerprint::new(&cluster, &action, &raw, None);
    let response_summary = row
        .response_summary
        .as_deref()
        .and_then(|s| crate::domain::job::summarize(s.as_bytes()));
    Ok(ImportedJob {
        job_id,
        legacy_id,
        user: user.as_str().to_owned(),
        cluster,
        action,
        action_code,
        cids,
        payload_hash: fingerprint.payload_hash,
        intent_hash: fingerprint.intent_hash,
        response_summary,
        created_at,
    })
}

/// The action's name and code from whichever the row has, the catalog
/// filling in the other (code 0 when nobody knows it).
fn resolve_action(
    name: Option<String>,
    code: Option<String>,
    catalog: &ActionCatalog,
) -> Result<(String, i64), String> {
    let code = code
        .map(|c| {
            c.trim()
                .parse::<i64>()
                .map_err(|_| format!("action_code {c:?} is not a number"))
        })
        .transpose()?;
    match (name, code) {
        (Some(name), Some(code)) => Ok((name, code)),
        (Some(name), None) => {
            let code = catalog.get(&name).map_or(0, |a| a.code);
            Ok((name, code))
        }
        (None, Some(code)) => catalog
            .iter()
            .find(|a| a.code == code)
            .map(|a| (a.name.clone(), code))
            .ok_or_else(|| format!("action_name is empty and code {code} is not in the catalog")),
        (None, None) => Err("no action (action_name and action_code are empty)".into()),
    }
}

/// Times as the old dashboard and SQLite write them: `YYYY-MM-DD HH:MM:SS[.fff]`,
/// ISO 8601 with `T` and an optional zone (none means UTC), or Unix seconds.
/// Kept to the millisecond, like every time in the store.
pub fn parse_legacy_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        if secs.is_empty() || frac.contains('.') {
            return None;
        }
        let secs: i64 = secs.parse().ok()?;
        let millis: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
        return DateTime::from_timestamp_millis(secs.checked_mul(1000)?.checked_add(millis)?);
    }
    let t = match t.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &t[..10], t[11..].trim_start()),
        _ => t.to_owned(),
    };
    let with_zone = DateTime::parse_from_rfc3339(&t)
        .ok()
        .or_else(|| DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%#z").ok())
        .or_else(|| DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f %#z").ok())
        .map(|d| d.with_timezone(&Utc));
    let utc = with_zone.or_else(|| {
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&t, f).ok())
            .map(|n| n.and_utc())
    })?;
    Some(truncate_millis(utc))
}

/// `cids` as a JSON array (of strings or numbers) or as text separated by
/// commas or white space; trimmed, repeats collapsed, order kept.
pub fn parse_cids(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    let items: Vec<String> = if t.starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(t)
            .map_err(|_| "cids looks like JSON but is not a JSON array".to_owned())?;
        values
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err("cids holds a value that is neither a string nor a number".to_owned()),
            })
            .collect::<Result<_, _>>()?
    } else {
        split_text(t).map(str::to_owned).collect()
    };
    let raw = RawCids::from_input(&CidsInput::List(items));
    let cids: Vec<String> = raw
        .values()
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    if cids.is_empty() {
        return Err("no CIDs (cids is empty)".into());
    }
    Ok(cids)
}

/// Replaces, at any depth, the value of every member named `token`,
/// `password`, `authorization` or `api_key` (any case) by `"[redacted]"`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, v) in members.iter_mut() {
                let plain: String = name
                    .chars()
                    .filter(|c| *c != '_' && *c != '-')
                    .flat_map(char::to_uppercase)
                    .flat_map(char::to_lowercase)
                    .collect();
                if SECRET_MEMBERS.contains(&plain.as_str()) {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The payload parsed and redacted; `None` when it is not JSON.
pub fn redacted_payload(text: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    redact(&mut value);
    Some(value)
}

/// The cluster a legacy URL names: the configured cluster with that base
/// URL, else the URL's host, else `legacy`.
pub fn cluster_for_url(url: Option<&str>, clusters: &[(String, String)]) -> String {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return UNKNOWN_CLUSTER.into();
    };
    let parse = |u: &str| {
        reqwest::Url::parse(u)
            .ok()
            .filter(|p| p.host_str().is_some())
            .or_else(|| reqwest::Url::parse(&format!("http://{u}")).ok())
    };
    let Some(parsed) = parse(url) else {
        return UNKNOWN_CLUSTER.into();
    };
    let same = |other: &reqwest::Url| {
        other.scheme() == parsed.scheme()
            && other.host_str() == parsed.host_str()
            && other.port_or_known_default() == parsed.port_or_known_default()
            && other.path().trim_end_matches('/') == parsed.path().trim_end_matches('/')
    };
    if let Some((name, _)) = clusters
        .iter()
        .find(|(_, base)| parse(base).is_some_and(|b| same(&b)))
    {
        return name.clone();
    }
    parsed
        .host_str()
        .map(str::to_owned)
        .unwrap_or_else(|| UNKNOWN_CLUSTER.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_old_dashboards_times_read_as_utc() {
        let t = at("2025-03-01T08:02:05Z");
        assert_eq!(parse_legacy_time("2025-03-01 08:02:05"), Some(t));
        assert_eq!(parse_legacy_time("2025-03-01T08:02:05"), Some(t));
        assert_eq!(parse_legacy_time(" 2025-03-01 08:02:05 "), Some(t));
        assert_eq!(parse_legacy_time("2025-03-01T08:02:05Z"), Some(t));
        assert_eq!(parse_legacy_time("2025-03-01T10:02:05+02:00"), Some(t));
        assert_eq!(parse_legacy_time("2025-03-01 10:02:05+0200"), Some(t));
        assert_eq!(parse_legacy_time("1740816125"), Some(t));
    }

    #[test]
    fn fractions_of_a_second_are_kept_to_the_millisecond() {
        let t = at("2025-03-01T08:02:05.123Z");
        assert_eq!(parse_legacy_time("2025-03-01 08:02:05.123"), Some(t));
        assert_eq!(parse_legacy_time("2025-03-01 08:02:05.123456"), Some(t));
        assert_eq!(parse_legacy_time("1740816125.123"), Some(t));
        assert_eq!(parse_legacy_time("1740816125.1239"), Some(t));
        assert_eq!(
            parse_legacy_time("1740816125.5"),
            Some(at("2025-03-01T08:02:05.500Z"))
        );
    }

    #[test]
    fn unreadable_times_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01 00:00:00",
            "1.2.3",
            ".5",
            "2025-03-01 25:00",
        ] {
            assert_eq!(parse_legacy_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cids_read_as_a_json_array_or_as_separated_text() {
        assert_eq!(parse_cids(r#"["C1", "C2"]"#).unwrap(), ["C1", "C2"]);
        assert_eq!(parse_cids("[101, 102]").unwrap(), ["101", "102"]);
        assert_eq!(parse_cids("C1,C2, C3").unwrap(), ["C1", "C2", "C3"]);
        assert_eq!(parse_cids("C1 C2\tC3").unwrap(), ["C1", "C2", "C3"]);
        assert_eq!(parse_cids(r#"[" C1 ", "C1", "C2"]"#).unwrap(), ["C1", "C2"]);
    }

    #[test]
    fn empty_or_broken_cids_are_refused() {
        for bad in ["", "[]", " , ", r#"[""]"#, "[1, {}]", "[unclosed"] {
            assert!(parse_cids(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_redacted_at_any_depth_and_in_any_case() {
        let mut v = json!({
            "token": "legacy-secret-1",
            "Authorization": "Bearer legacy-secret-2",
            "nested": {"PASSWORD": "legacy-secret-3", "list": [{"api_key": "legacy-secret-4"}, {"Api-Key": "x"}]},
            "cids": ["C1"],
        });
        redact(&mut v);
        assert!(!v.to_string().contains("legacy-secret"), "{v}");
        assert_eq!(v["token"], "[redacted]");
        assert_eq!(v["nested"]["list"][1]["Api-Key"], "[redacted]");
        assert_eq!(v["cids"], json!(["C1"]));
    }

    #[test]
    fn a_legacy_url_maps_to_its_configured_cluster_else_to_its_host() {
        let clusters = vec![(
            "eu-prod".to_owned(),
            "http://tms-eu-1.internal:8443/".to_owned(),
        )];
        assert_eq!(
            cluster_for_url(Some("http://tms-eu-1.internal:8443"), &clusters),
            "eu-prod"
        );
        assert_eq!(
            cluster_for_url(Some("http://TMS-EU-1.internal:8443/"), &clusters),
            "eu-prod"
        );
        assert_eq!(
            cluster_for_url(Some("http://tms-us-2.internal:8443"), &clusters),
            "tms-us-2.internal"
        );
        assert_eq!(
            cluster_for_url(Some("tms-ap-1.internal"), &clusters),
            "tms-ap-1.internal"
        );
        assert_eq!(cluster_for_url(None, &clusters), UNKNOWN_CLUSTER);
    }

    #[test]
    fn a_row_missing_columns_is_filled_in_from_the_catalog_and_the_payload() {
        let row = LegacyRow {
            job_id: Some("42".into()),
            user_id: Some("ops1".into()),
            action_code: Some("3".into()),
            request_payload: Some(
                r#"{"cids": ["C2", "C1"], "url": "http://tms-eu-1.internal:8443", "token": "legacy-secret-x"}"#.into(),
            ),
            created_at: Some("2025-03-01 08:02:05".into()),
            ..LegacyRow::default()
        };
        let job = convert(&row, &ImportOptions::default()).unwrap();
        assert_eq!(job.action, "Suspend");
        assert_eq!(job.cids, ["C2", "C1"]);
        assert_eq!(job.cluster, "tms-eu-1.internal");
        assert_eq!(job.legacy_id.as_deref(), Some("42"));
        assert_eq!(job.job_id.as_uuid().get_version_num(), 7);
        assert!(!format!("{job:?}").contains("legacy-secret"));
    }

    #[test]
    fn the_intent_ignores_the_order_of_the_cids() {
        let row = |cids: &str| LegacyRow {
            job_id: Some(uuid::Uuid::now_v7().to_string()),
            user_id: Some("ops1".into()),
            action_name: Some("Trans-Begin".into()),
            cids: Some(cids.into()),
            created_at: Some("2025-03-01 08:02:05".into()),
            ..LegacyRow::default()
        };
        let options = ImportOptions::default();
        let a = convert(&row(r#"["C1","C2"]"#), &options).unwrap();
        let b = convert(&row("C2, C1"), &options).unwrap();
        assert_eq!(a.intent_hash, b.intent_hash);
        assert_eq!(a.action_code, 1);
    }

    proptest! {
        #[test]
        fn every_millisecond_time_round_trips_through_each_text_form(ms in 0i64..4_102_444_800_000) {
            let t = DateTime::from_timestamp_millis(ms).unwrap();
            let forms = [
                t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string(),
                format!("{}.{:03}", ms / 1000, ms % 1000),
            ];
            for form in forms {
                prop_assert_eq!(parse_legacy_time(&form), Some(t), "{}", form);
            }
        }

        #[test]
        fn no_secret_survives_redaction(secret in "[a-z0-9]{1,20}", name in "(?i)(token|password|authorization|api_key)", depth in 0usize..5) {
            let mut v = json!({ name.clone(): format!("legacy-secret-{secret}") });
            for _ in 0..depth {
                v = json!({"inner": [v]});
            }
            redact(&mut v);
            prop_assert!(!v.to_string().contains("legacy-secret"));
        }

        #[test]
        fn separated_and_json_cids_agree(cids in proptest::collection::vec("[A-Z][0-9]{1,6}", 1..20)) {
            let json = serde_json::to_string(&cids).unwrap();
            prop_assert_eq!(parse_cids(&json).unwrap(), parse_cids(&cids.join(", ")).unwrap());
        }
    }
}
