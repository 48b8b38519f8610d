//! The black-box suite: the real server over real HTTP, one capability per file.

mod helpers;

mod actions;
mod browser;
mod crash;
mod idempotency;
mod jobs;
mod ops;
mod outcomes;
mod pages;
mod roles;
mod secrets;
mod session;
mod users_tokens;
mod validation;
