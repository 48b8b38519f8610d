//! Backup and restore of a SQLite store, each proved: a backup is a
//! consistent copy taken while the store serves, and a restore makes a new
//! store of it and re-computes both hash chains (the sealed jobs and the
//! event feed) before saying it is sound. A PostgreSQL store is copied with
//! `pg_dump` and `pg_restore` (docs/operations.md), then checked with
//! `audit verify` and `events verify` the same way.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::service::audit::seal::{self, Verification};
use crate::service::events::{verify_chain, ChainCheck};
use crate::store::backup::{self as copy, Contents};
use crate::store::{Db, PoolSettings};

/// What `backup` wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub contents: Contents,
}

/// What `restore` made, and what re-computing its chains found.
#[derive(Debug)]
pub struct RestoreReport {
    pub contents: Contents,
    pub jobs_chain: Verification,
    pub events_chain: ChainCheck,
}

impl RestoreReport {
    pub fn is_sound(&self) -> bool {
        self.jobs_chain.broken.is_none() && matches!(self.events_chain, ChainCheck::Intact { .. })
    }
}

/// The SQLite file a store URL names; a PostgreSQL store is refused with
/// the way to copy it instead.
fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    match crate::store::sqlite_path(url) {
        Some(path) => Ok(PathBuf::from(path)),
        None if url.starts_with("postgres") => bail!(
            "a PostgreSQL store is copied with pg_dump and restored with pg_restore \
             (docs/operations.md, \"Backup and restore\"); `backup` and `restore` copy SQLite stores"
        ),
        None => bail!("{url} names no SQLite file"),
    }
}

/// Copies the store at `store_url` to `dest` while it may be serving, then
/// checks the copy's integrity. Refuses an existing `dest`.
pub async fn backup(store_url: &str, dest: &Path) -> anyhow::Result<BackupReport> {
    let source = sqlite_file(store_url)?;
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        copy::copy_sqlite(&source, &dest)?;
        if let Some(problem) = copy::integrity_problem(&dest)? {
            let _ = std::fs::remove_file(&dest);
            bail!("the copy failed its integrity check ({problem}); nothing was kept");
        }
        Ok(BackupReport {
            bytes: std::fs::metadata(&dest)?.len(),
            contents: copy::contents(&dest)?,
            path: dest,
        })
    })
    .await
    .context("the backup stopped")?
}

/// Makes a new store at `target_url` from the backup at `backup_file`
/// (refusing a store that exists: a restore never overwrites one), opens it
/// as every command does (a backup of an older version is migrated), and
/// re-computes its chains.
pub async fn restore(backup_file: &Path, target_url: &str) -> anyhow::Result<RestoreReport> {
    let target = sqlite_file(target_url)?;
    let source = backup_file.to_owned();
    let copied_to = target.clone();
    tokio::task::spawn_blocking(move || {
        if let Some(problem) = copy::integrity_problem(&source)? {
            bail!(
                "{} failed its integrity check ({problem}); nothing was restored",
                source.display()
            );
        }
        // A sound SQLite file that is not a store of this console is refused
        // before anything is written.
        copy::contents(&source)?;
        if let Some(parent) = copied_to.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create the folder {}", parent.display()))?;
        }
        copy::copy_sqlite(&source, &copied_to)
    })
    .await
    .context("the restore stopped")??;
    let db = Db::open(target_url, &PoolSettings::default()).await?;
    let checked = async {
        let jobs_chain = seal::verify(&db).await?;
        let events_chain = verify_chain(&db).await?;
        anyhow::Ok((jobs_chain, events_chain))
    }
    .await;
    db.close().await;
    let (jobs_chain, events_chain) = checked?;
    Ok(RestoreReport {
        contents: tokio::task::spawn_blocking(move || copy::contents(&target))
            .await
            .context("the restore stopped")??,
        jobs_chain,
        events_chain,
    })
}
