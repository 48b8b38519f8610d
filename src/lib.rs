//! TMS Dashboard: an operations console whose rule is one confirmed Set Action,
//! one job. The library holds everything; `main.rs` only parses the command line.
#![forbid(unsafe_code)]
// A panic in a handler is a 500 and a lost answer: `?` and typed errors instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod net;
pub mod oidc;
pub mod password;
pub mod sandbox;
pub mod service;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod upstream;

pub use error::{Error, Result};
