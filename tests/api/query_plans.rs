//! The audit's queries stay off full scans: every page shape the audit
//! serves is planned with an index, on this run's store.

use chrono::{Duration, Utc};
use tms_dashboard::domain::job::JobStatus;
use tms_dashboard::domain::query::{JobCursor, JobFilter};
use tms_dashboard::store::{Db, PoolSettings};

use crate::store::{Backend, TestStore};

/// True when a plan line reads every row of a table: SQLite's `SCAN t`
/// without an index, or PostgreSQL's `Seq Scan` even with sequential scans
/// priced out (no index could serve the query).
fn is_full_scan(backend: Backend, line: &str) -> bool {
    match backend {
        Backend::Sqlite => {
            let line = line.trim();
            line.starts_with("SCAN ") && !line.contains(" USING ")
        }
        Backend::Postgres => line.contains("Seq Scan"),
    }
}

#[tokio::test]
async fn every_audit_query_shape_is_served_by_an_index() {
    let store = TestStore::new().await;
    let db = Db::open(&store.url, &PoolSettings::default())
        .await
        .unwrap();
    let now = Utc::now();
    let deep = Some(JobCursor {
        created_at: now - Duration::days(30),
        job_id: uuid::Uuid::now_v7(),
    });
    let shapes: Vec<(&str, JobFilter, Option<JobCursor>)> = vec![
        ("first page", JobFilter::default(), None),
        ("a page deep in the history", JobFilter::default(), deep),
        (
            "user and action",
            JobFilter {
                user: Some("ops".into()),
                action: Some("Trans-Begin".into()),
                ..JobFilter::default()
            },
            None,
        ),
        (
            "status",
            JobFilter {
                status: Some(JobStatus::Failed),
                ..JobFilter::default()
            },
            None,
        ),
        (
            "CID search",
            JobFilter {
                cid: Some("C123".into()),
                ..JobFilter::default()
            },
            None,
        ),
        (
            "date range",
            JobFilter {
                since: Some(now - Duration::days(2)),
                until: Some(now - Duration::days(1)),
                ..JobFilter::default()
            },
            None,
        ),
        (
            "user, page deep",
            JobFilter {
                user: Some("ops".into()),
                ..JobFilter::default()
            },
            deep,
        ),
    ];
    for (shape, filter, cursor) in shapes {
        let plan = db.explain_list_jobs(&filter, cursor, 50).await.unwrap();
        assert!(!plan.is_empty(), "{shape}: no plan");
        let full: Vec<&String> = plan
            .iter()
            .filter(|l| is_full_scan(store.backend, l))
            .collect();
        assert!(
            full.is_empty(),
            "{shape}: full scan in the plan:\n{}",
            plan.join("\n")
        );
        // A filter or a cursor must narrow the index, not walk it from the
        // newest job while filtering.
        if shape != "first page" {
            let narrowed = match store.backend {
                Backend::Sqlite => plan.iter().any(|l| l.contains("SEARCH ")),
                Backend::Postgres => plan.iter().any(|l| l.contains("Index Cond")),
            };
            assert!(
                narrowed,
                "{shape}: no index search in the plan:\n{}",
                plan.join("\n")
            );
        }
    }
    db.close().await;
}

#[test]
fn the_full_scan_check_recognises_full_scans() {
    assert!(is_full_scan(Backend::Sqlite, "SCAN jobs"));
    assert!(!is_full_scan(
        Backend::Sqlite,
        "SCAN jobs USING INDEX jobs_by_time"
    ));
    assert!(!is_full_scan(
        Backend::Sqlite,
        "SEARCH jobs USING INDEX jobs_by_user_time (user_name=?)"
    ));
    assert!(is_full_scan(
        Backend::Postgres,
        "  ->  Seq Scan on jobs  (cost=10000000000.00..10000000001.10 rows=1 width=8)"
    ));
}
