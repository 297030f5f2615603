//! See the crate docs for this layer's role.

pub mod images;
