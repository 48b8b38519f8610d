//! The black-box suite: the real server over real HTTP, one capability per file.

mod helpers;
mod store;

mod actions;
mod audit;
mod crash;
mod idempotency;
mod jobs;
mod legacy;
mod multi_instance;
mod ops;
mod outcomes;
mod proxy;
mod readiness;
mod roles;
mod secrets;
mod session;
mod users_tokens;
mod validation;
