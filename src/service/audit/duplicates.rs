//! The duplicate audit (SPEC §7): jobs of one user with the same cluster,
//! action and set of CIDs, each created within the window of the previous
//! one. One ordered pass over the index `jobs_duplicate_scan`, keyset page by
//! page: a job is compared only with the one before it, never pairwise, and
//! memory holds one page and the group being built, whatever the store's size.
//!
//! Jobs that `failed` are left out (the cluster did not apply them); `pending`,
//! `timed_out` and `unknown` ones are kept, since the cluster may have applied
//! them. Marked jobs (`duplicate_of` set) still belong to their group, so a
//! group keeps its shape after `dedupe`; a group whose later jobs are all
//! marked is *resolved* and, unless asked for, left out of the report.
//! Jobs created with `confirm_duplicate` (someone was warned and ran it
//! again on purpose) are not duplicates: the scan leaves them out unless
//! asked to include them (SPEC §16).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::job::JobId;
use crate::error::Result;
use crate::store::audit::{ScanKey, ScanRange, ScanRow};
use crate::store::Db;

/// How far apart two jobs of a group may be; a gap equal to it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    millis: i64,
}

impl Window {
    /// The default of the old dashboard's script and of the specification.
    pub const DEFAULT: Window = Window { millis: 2_000 };
    /// A day: beyond that, "the same click" makes no sense.
    pub const MAX_MILLIS: i64 = 86_400_000;

    pub fn from_millis(millis: i64) -> Option<Self> {
        (0..=Self::MAX_MILLIS)
            .contains(&millis)
            .then_some(Window { millis })
    }

    /// Seconds as the API's `window_s` takes them, fractions allowed (`0.5`).
    pub fn from_secs_str(s: &str) -> std::result::Result<Self, String> {
        let secs: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        if !secs.is_finite() {
            return Err(format!("{s:?} is not a number of seconds"));
        }
        Self::from_millis((secs * 1000.0).round() as i64)
            .ok_or_else(|| format!("{s:?} is not between 0 and 86400 seconds"))
    }

    /// The command line's form: `2s`, `500ms`, `1m`, or plain seconds.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Ok(w) = Self::from_secs_str(s) {
            return Ok(w);
        }
        let d = humantime::parse_duration(s.trim())
            .map_err(|_| format!("{s:?} is not a window like 2s, 500ms or 1m"))?;
        i64::try_from(d.as_millis())
            .ok()
            .and_then(Self::from_millis)
            .ok_or_else(|| format!("{s:?} is longer than a day"))
    }

    pub fn millis(self) -> i64 {
        self.millis
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.millis % 1000 == 0 {
            write!(f, "{}s", self.millis / 1000)
        } else {
            write!(f, "{}ms", self.millis)
        }
    }
}

/// What to look for.
#[derive(Clone, Debug, Default)]
pub struct DuplicateParams {
    pub window: Window,
    /// Inclusive; all history when absent.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// Also report groups whose later jobs are all marked already.
    pub include_marked: bool,
}

/// One job of a group, with its mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub job_id: JobId,
    pub created_at: DateTime<Utc>,
    pub duplicate_of: Option<JobId>,
}

/// Jobs that look like one click recorded several times.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DuplicateGroup {
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub cid_count: i64,
    /// Oldest first; the first is the one the others are marked against.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub job_ids: Vec<JobId>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub first_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub last_at: DateTime<Utc>,
    /// Every later job of the group carries `duplicate_of` already.
    pub marked: bool,
    #[serde(skip)]
    pub members: Vec<Member>,
}

/// The report: `{"groups": [...], "count": N}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"groups": [{"user": "olga", "cluster": "sandbox", "action": "Trans-Begin",
    "cid_count": 2, "job_ids": ["0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11", "0193f1c2-5b02-7c3e-9a51-2f4b8c1d0e12"],
    "first_at": "2026-11-29T10:00:00.123Z", "last_at": "2026-11-29T10:00:01.020Z", "marked": false}],
    "count": 1}))]
pub struct DuplicateReport {
    pub groups: Vec<DuplicateGroup>,
    /// The number of groups.
    pub count: usize,
}

/// Consecutive jobs of one intent, each within the window of the previous.
struct Run {
    user: String,
    cluster: String,
    action: String,
    intent_hash: String,
    cid_count: i64,
    members: Vec<Member>,
}

impl Run {
    fn start(row: ScanRow) -> Self {
        let member = member_of(&row);
        Run {
            user: row.user_name,
            cluster: row.cluster,
            action: row.action,
            intent_hash: row.intent_hash,
            cid_count: row.cid_count,
            members: vec![member],
        }
    }

    fn extended_by(&self, row: &ScanRow, window: Window) -> bool {
        let last = self.members.last().map(|m| m.created_at);
        row.user_name == self.user
            && row.cluster == self.cluster
            && row.action == self.action
            && row.intent_hash == self.intent_hash
            && last.is_some_and(|t| (row.created_at - t).num_milliseconds() <= window.millis())
    }
}

fn member_of(row: &ScanRow) -> Member {
    Member {
        job_id: JobId::from_uuid(row.job_id),
        created_at: row.created_at,
        duplicate_of: row.duplicate_of.map(JobId::from_uuid),
    }
}

/// The streaming pass: call `next_group` until it answers `None`.
pub struct DuplicateScan {
    db: Db,
    range: ScanRange,
    window: Window,
    include_marked: bool,
    include_confirmed: bool,
    page_size: u32,
    buffer: VecDeque<ScanRow>,
    after: Option<ScanKey>,
    exhausted: bool,
    run: Option<Run>,
    rows_seen: u64,
    rows_reported: u64,
}

/// One step of the scan.
#[derive(Debug)]
pub enum ScanStep {
    Group(DuplicateGroup),
    /// A page was read; this many jobs so far.
    Progress(u64),
}

impl DuplicateScan {
    pub const PAGE_SIZE: u32 = 1000;

    pub fn new(db: &Db, params: &DuplicateParams) -> Self {
        DuplicateScan {
            db: db.clone(),
            range: ScanRange {
                since: params.since,
                until: params.until,
            },
            window: params.window,
            include_marked: params.include_marked,
            include_confirmed: false,
            page_size: Self::PAGE_SIZE,
            buffer: VecDeque::new(),
            after: None,
            exhausted: false,
            run: None,
            rows_seen: 0,
            rows_reported: 0,
        }
    }

    /// Also the jobs created with `confirm_duplicate` (left out otherwise).
    pub fn including_confirmed(mut self, include: bool) -> Self {
        self.include_confirmed = include;
        self
    }

    /// Pages of another size (tests use tiny ones to cross page borders).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Jobs read so far.
    pub fn rows_seen(&self) -> u64 {
        self.rows_seen
    }

    /// The range this scan reads, for counting it up front.
    pub fn range(&self) -> &ScanRange {
        &self.range
    }

    async fn next_row(&mut self) -> Result<Option<ScanRow>> {
        if self.buffer.is_empty() && !self.exhausted {
            let page = self
                .db
                .duplicate_scan_page(&self.range, self.after.as_ref(), self.page_size)
                .await?;
            self.exhausted = page.len() < self.page_size as usize;
            self.after = page.last().map(ScanRow::key);
            self.buffer.extend(page);
        }
        Ok(self.buffer.pop_front())
    }

    /// The next group, in scan order (user, cluster, action, intent, time).
    pub async fn next_group(&mut self) -> Result<Option<DuplicateGroup>> {
        loop {
            match self.next_step().await? {
                Some(ScanStep::Group(group)) => return Ok(Some(group)),
                Some(ScanStep::Progress(_)) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The next group, or word of progress after each page read.
    pub async fn next_step(&mut self) -> Result<Option<ScanStep>> {
        loop {
            if self.buffer.is_empty() && self.rows_seen > self.rows_reported {
                self.rows_reported = self.rows_seen;
                return Ok(Some(ScanStep::Progress(self.rows_seen)));
            }
            let Some(row) = self.next_row().await? else {
                let Some(run) = self.run.take() else {
                    return Ok(None);
                };
                match self.finish(run) {
                    Some(group) => return Ok(Some(ScanStep::Group(group))),
                    None => continue,
                }
            };
            self.rows_seen += 1;
            if row.confirm_duplicate && !self.include_confirmed {
                continue;
            }
            if let Some(run) = self
                .run
                .as_mut()
                .filter(|r| r.extended_by(&row, self.window))
            {
                run.members.push(member_of(&row));
                continue;
            }
            let previous = self.run.replace(Run::start(row));
            if let Some(group) = previous.and_then(|r| self.finish(r)) {
                return Ok(Some(ScanStep::Group(group)));
            }
        }
    }

    fn finish(&self, run: Run) -> Option<DuplicateGroup> {
        if run.members.len() < 2 {
            return None;
        }
        let marked = run.members[1..].iter().all(|m| m.duplicate_of.is_some());
        if marked && !self.include_marked {
            return None;
        }
        let first_at = run.members[0].created_at;
        let last_at = run.members[run.members.len() - 1].created_at;
        Some(DuplicateGroup {
            user: run.user,
            cluster: run.cluster,
            action: run.action,
            cid_count: run.cid_count,
            job_ids: run.members.iter().map(|m| m.job_id).collect(),
            first_at,
            last_at,
            marked,
            members: run.members,
        })
    }
}

/// The whole report in memory: the groups only, never the jobs scanned.
pub async fn find_duplicates(
    db: &Db,
    params: &DuplicateParams,
    include_confirmed: bool,
) -> Result<DuplicateReport> {
    let mut scan = DuplicateScan::new(db, params).including_confirmed(include_confirmed);
    let mut groups = Vec::new();
    while let Some(group) = scan.next_group().await? {
        groups.push(group);
    }
    Ok(DuplicateReport {
        count: groups.len(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows_read_seconds_units_and_fractions() {
        assert_eq!(Window::parse("2s").unwrap().millis(), 2000);
        assert_eq!(Window::parse("500ms").unwrap().millis(), 500);
        assert_eq!(Window::parse("1m").unwrap().millis(), 60_000);
        assert_eq!(Window::parse("2").unwrap().millis(), 2000);
        assert_eq!(Window::from_secs_str("0.5").unwrap().millis(), 500);
        assert_eq!(Window::from_secs_str("0").unwrap().millis(), 0);
    }

    #[test]
    fn nonsense_windows_are_refused() {
        for bad in ["", "-1", "abc", "NaN", "inf", "2 parsecs", "86401", "2d"] {
            assert!(Window::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Window::from_secs_str("1s").is_err());
    }

    #[test]
    fn windows_print_in_the_unit_they_fit() {
        assert_eq!(Window::DEFAULT.to_string(), "2s");
        assert_eq!(Window::from_millis(1500).unwrap().to_string(), "1500ms");
    }

    proptest! {
        #[test]
        fn any_whole_millisecond_window_round_trips(ms in 0i64..=Window::MAX_MILLIS) {
            let w = Window::from_millis(ms).unwrap();
            prop_assert_eq!(Window::parse(&w.to_string()).unwrap(), w);
        }
    }
}
