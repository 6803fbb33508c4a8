//! The checks behind weft's fuzz targets, one module per target. Each depends on
//! `weft` and `std` only, so that the regression tests of `tests/` replay saved
//! inputs through the very same checks on stable Rust.

pub mod boundary;
pub mod channel_model;
pub mod parsers;
