//! The audit tooling: the duplicate report, the marking of duplicates, the
//! import of the old dashboard's jobs and the export of the audit. Shared by
//! the command line, the API and the pages. Only `retention`, when configured,
//! ever deletes a job.

pub mod dedupe;
pub mod duplicates;
pub mod export;
pub mod legacy;
pub mod retention;

pub use duplicates::{
    DuplicateGroup, DuplicateParams, DuplicateReport, DuplicateScan, ScanStep, Window,
};
