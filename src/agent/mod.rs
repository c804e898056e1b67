//! Work in progress.

pub mod labels;
