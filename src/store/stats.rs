//! Counts for the audit's chart: jobs per day (UTC) and status, under the
//! same filters as the listing.

use sqlx::QueryBuilder;

use super::jobs::push_job_filter;
use super::{with_pool, Db};
use crate::domain::query::JobFilter;
use crate::error::Result;

/// How many jobs of one status were created on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub status: String,
    pub count: i64,
}

impl Db {
    /// Jobs matching `filter`, counted by creation day (UTC) and status,
    /// oldest day first.
    #[tracing::instrument(skip_all)]
    pub async fn jobs_per_day(&self, filter: &JobFilter) -> Result<Vec<DayCount>> {
        // SQLite keeps times as RFC 3339 text in UTC, PostgreSQL as TIMESTAMPTZ.
        let day = match self {
            Db::Sqlite(_) => "substr(created_at, 1, 10)",
            Db::Postgres(_) => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(format!(
                "SELECT {day} AS day, status, COUNT(*) AS n FROM jobs WHERE 1 = 1"
            ));
            push_job_filter(&mut query, filter);
            query.push(" GROUP BY 1, 2 ORDER BY 1, 2");
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(day, status, count)| DayCount { day, status, count })
            .collect())
    }
}
