//! TMS Dashboard: an operations console whose rule is one confirmed Set Action,
//! one job. The library holds everything; `main.rs` only parses the command line.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod execution;
pub mod http;
pub mod oidc;
pub mod password;
pub mod sandbox;
pub mod seal;
pub mod store;
pub mod telemetry;
pub mod upstream;

pub use error::{Error, Result};
