//! The application layer: every rule of the product, written once, for the
//! HTTP API, the pages and the command line. Adapters parse what they were
//! sent into the input types defined here, call one method, and render what
//! it answers; who may see or do what, how a request runs exactly once, how
//! a person signs in and what a user change may not do, all live here.
//!
//! - `jobs`: the job query (one set of parameters, parsed once, with the
//!   visibility rule applied once), pages of jobs, one job, the export, the
//!   chart's counts;
//! - `execution`: the exactly-once Set Action, the sweep;
//! - `runs`: runs over thousands of customers, their checks, reads and
//!   commands; `dispatcher`: sends their batches within each cluster's limits;
//! - `approvals`: four eyes, a request frozen until a second person
//!   approves it, then executed once;
//! - `accounts`: sign-in (local, single sign-on, API sessions), sessions,
//!   API tokens, users and the rules on their changes;
//! - `audit`: the duplicate report and its marking, the legacy import, the
//!   export's encoding, retention and the tamper-evident chain.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::user::{Role, User};
use crate::error::{Error, Result};
use crate::oidc::Sso;
use crate::store::Db;

pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod backup;
pub mod customers;
pub mod demo;
pub mod dispatcher;
pub mod events;
pub mod execution;
pub mod jobs;
pub mod runs;
pub mod sso;

use approvals::Approvals;
use execution::ExecutionService;
use runs::Runs;

/// Who is asking.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A logged-in user (a session or an API token).
    User(User),
    /// The command line on the store's host: it reads the whole audit, as
    /// an auditor would, and manages users without being one.
    Console,
}

impl Actor {
    /// Admins and auditors see every job; the command line too.
    pub fn sees_all_jobs(&self) -> bool {
        match self {
            Actor::User(user) => user.role.sees_all_jobs(),
            Actor::Console => true,
        }
    }

    /// The user behind the request, if it is one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Actor::User(user) => Some(user),
            Actor::Console => None,
        }
    }

    /// Refuses unless the actor is an admin (or the command line).
    pub fn require_admin(&self) -> Result<()> {
        match self {
            Actor::User(user) if user.role != Role::Admin => {
                Err(Error::Forbidden("only admins may do this"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses unless the actor may see the whole audit.
    pub fn require_sees_all(&self) -> Result<()> {
        if self.sees_all_jobs() {
            Ok(())
        } else {
            Err(Error::Forbidden("only admins and auditors see this"))
        }
    }
}

/// Settings of accounts and sessions.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// How long a login lasts.
    pub session_ttl: Duration,
}

/// The application: what every adapter calls. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    db: Db,
    execution: Arc<ExecutionService>,
    runs: Arc<Runs>,
    approvals: Arc<Approvals>,
    accounts: AccountSettings,
    sso: Option<Arc<Sso>>,
    sinks: Arc<[Arc<crate::sinks::SinkSpec>]>,
}

impl Service {
    pub fn new(
        db: Db,
        execution: Arc<ExecutionService>,
        runs: Arc<Runs>,
        accounts: AccountSettings,
        sso: Option<Arc<Sso>>,
    ) -> Self {
        let approvals = Arc::new(Approvals::new(
            db.clone(),
            Arc::clone(&execution),
            Arc::clone(&runs),
        ));
        Self {
            db,
            execution,
            runs,
            approvals,
            accounts,
            sso,
            sinks: Arc::from(Vec::new()),
        }
    }

    /// The same service, delivering the event feed to `sinks`.
    pub fn with_sinks(mut self, sinks: Vec<Arc<crate::sinks::SinkSpec>>) -> Self {
        self.sinks = Arc::from(sinks);
        self
    }

    /// The configured sinks of the event feed.
    pub fn sinks(&self) -> &[Arc<crate::sinks::SinkSpec>] {
        &self.sinks
    }

    /// The store, for the operations endpoints (readiness) and start-up.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The Set Action and the catalog it runs from.
    pub fn execution(&self) -> &Arc<ExecutionService> {
        &self.execution
    }

    /// Single sign-on, when configured.
    pub fn sso(&self) -> Option<&Sso> {
        self.sso.as_deref()
    }
}
