//! Domain types: values that cannot be invalid once parsed. Handlers and the
//! store speak in these, so rules live here and nowhere else.

pub mod action;
pub mod approval;
pub mod cid;
pub mod cluster;
pub mod event;
pub mod fingerprint;
pub mod idempotency;
pub mod job;
pub mod outcome;
pub mod query;
pub mod run;
pub mod secret;
pub mod sso;
pub mod user;
