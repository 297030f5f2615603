//! Evaluation: figures and the 2-D W2 tables.
//!
//! * [`plots`] — sample-path and W2-curve figures.

pub mod plots;
