//! Copies of a SQLite store, taken while it serves. PostgreSQL is copied
//! with its own tools (`pg_dump`, docs/operations.md): its dump is already a
//! consistent snapshot.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

/// Writes a consistent copy of the SQLite file at `source` to `dest`, which
/// must not exist. `VACUUM INTO` reads in one read transaction, so the copy
/// is the store as of one commit even while the writer goes on (WAL lets
/// both run); the connection is opened read-only, so nothing is written to
/// `source`. The copy goes to a temporary name beside `dest` and is renamed
/// into place once complete and flushed: an interrupted copy never looks
/// like a backup.
pub fn copy_sqlite(source: &Path, dest: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        source.is_file(),
        "there is no SQLite store at {}",
        source.display()
    );
    anyhow::ensure!(
        !dest.exists(),
        "{} already exists: a backup or restore never overwrites a file",
        dest.display()
    );
    let partial = partial_name(dest);
    let _ = std::fs::remove_file(&partial);
    let copied = (|| {
        let conn = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("Failed to open {}", source.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let target = partial.to_str().context("the path is not UTF-8")?;
        conn.execute("VACUUM INTO ?1", [target])
            .with_context(|| format!("Failed to copy {}", source.display()))?;
        drop(conn);
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, dest)
            .with_context(|| format!("Failed to move the copy to {}", dest.display()))?;
        anyhow::Ok(())
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// `dest` with `.partial` appended, in the same folder (so the rename is
/// atomic).
fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// What `PRAGMA integrity_check` finds in the file: `None` when it is sound.
pub fn integrity_problem(path: &Path) -> anyhow::Result<Option<String>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("Failed to open {}", path.display()))?;
    let answer: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .with_context(|| format!("{} is not a SQLite store", path.display()))?;
    Ok((answer != "ok").then_some(answer))
}

/// What a copy holds, counted in the file itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contents {
    pub jobs: i64,
    /// Jobs that were still running when the copy was taken: the sweep of
    /// the first instance serving the copy resolves them to `unknown`.
    pub pending_jobs: i64,
    /// The event feed's head: the copy's feed goes from 1 to here.
    pub last_event_seq: i64,
}

pub fn contents(path: &Path) -> anyhow::Result<Contents> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("Failed to open {}", path.display()))?;
    let count = |sql: &str| -> anyhow::Result<i64> {
        conn.query_row(sql, [], |row| row.get(0))
            .with_context(|| format!("{} is not a store of this console", path.display()))
    };
    Ok(Contents {
        jobs: count("SELECT count(*) FROM jobs")?,
        pending_jobs: count("SELECT count(*) FROM jobs WHERE status = 'pending'")?,
        last_event_seq: count("SELECT coalesce(max(seq), 0) FROM events")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_never_overwrites_and_leaves_no_partial_file_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("store.db");
        let conn = Connection::open(&source).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .expect("write");
        let dest = dir.path().join("copy.db");

        copy_sqlite(&source, &dest).expect("copy");
        let again = copy_sqlite(&source, &dest);

        assert!(again.is_err(), "a second copy to the same path is refused");
        assert_eq!(integrity_problem(&dest).expect("check"), None);
        let copy = Connection::open(&dest).expect("open the copy");
        let x: i64 = copy
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .expect("read");
        assert_eq!(x, 1, "the copy holds the row written before it");
        assert!(!partial_name(&dest).exists());
    }
}
