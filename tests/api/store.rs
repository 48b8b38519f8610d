//! A fresh store per test, on the backend the run asks for:
//! `TMS_TEST_STORE=sqlite` (default) gives an SQLite file in a temporary
//! folder, `TMS_TEST_STORE=postgres` a new database on the server at
//! `TMS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped when the test ends. The same tests run on both.

use std::path::Path;
use std::process::Command;

use sqlx::Connection;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which backend this run tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_this_run() -> Backend {
        match std::env::var("TMS_TEST_STORE").as_deref() {
            Ok("postgres") => Backend::Postgres,
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("TMS_TEST_STORE={other:?}: use sqlite or postgres"),
        }
    }
}

/// The maintenance URL of the PostgreSQL server the tests may use.
pub fn postgres_admin_url() -> String {
    std::env::var("TMS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("TMS_TEST_POSTGRES_URL is not a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// One test's store and its temporary folder (for SQLite files and logs).
pub struct TestStore {
    pub backend: Backend,
    pub url: String,
    dir: tempfile::TempDir,
    postgres_database: Option<String>,
}

impl TestStore {
    /// A store on this run's backend.
    pub async fn new() -> TestStore {
        TestStore::on(Backend::of_this_run()).await
    }

    pub async fn on(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("tms.db").display());
                TestStore {
                    backend,
                    url,
                    dir,
                    postgres_database: None,
                }
            }
            Backend::Postgres => {
                let name = format!("tms_test_{}", uuid::Uuid::now_v7().simple());
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot reach the test PostgreSQL server at {admin}: {e}")
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
                let _ = conn.close().await;
                let url = with_database(&admin, &name);
                TestStore {
                    backend,
                    url,
                    dir,
                    postgres_database: Some(name),
                }
            }
        }
    }

    /// The temporary folder of this test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every byte the store holds: the SQLite files, or a PostgreSQL data dump.
    pub fn dump(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                ["", "-wal", "-journal"]
                    .iter()
                    .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
                    .flatten()
                    .collect()
            }
            Backend::Postgres => {
                let out = Command::new("pg_dump")
                    .args(["--data-only", "--dbname", &self.url])
                    .output()
                    .expect("pg_dump (PostgreSQL client) is required");
                assert!(
                    out.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(name) = self.postgres_database.take() else {
            return;
        };
        // Drop runs inside or outside a runtime: use a thread of its own.
        let admin = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}
