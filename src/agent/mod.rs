//! Work in progress.

pub mod backoff;
pub mod decide;
pub mod labels;
