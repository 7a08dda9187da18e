//! What the store's test binaries share.

pub mod pg;
