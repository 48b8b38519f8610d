//! The black-box suite: the real server over real HTTP, one capability per file.

mod helpers;
mod store;

mod actions;
mod audit;
mod authorization;
mod browser;
mod crash;
mod crash_under_load;
mod customer_pages;
mod customers;
mod events;
mod faults;
mod guard_rails;
mod idempotency;
mod jobs;
mod legacy;
mod multi_instance;
mod oidc;
mod ops;
mod outcomes;
mod pages;
mod pressure;
mod proxy;
mod query_plans;
mod readiness;
mod roles;
mod run_faults;
mod run_pages;
mod runs;
mod secrets;
mod session;
mod users_tokens;
mod validation;
mod web_security;
