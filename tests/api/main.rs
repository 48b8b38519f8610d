//! The black-box suite: the real server over real HTTP, one capability per file.

mod helpers;

mod actions;
mod crash;
mod idempotency;
mod jobs;
mod ops;
mod outcomes;
mod roles;
mod secrets;
mod session;
mod users_tokens;
mod validation;
