//! The words every layer shares, defined once: the bottom of the crate,
//! beside the error type. It imports nothing from the crate.

pub mod env;
pub mod text;
