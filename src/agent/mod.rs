//! Work in progress.

pub mod decide;
pub mod labels;
