//! The file contract: the state files of a unit.

pub(crate) mod claim;
pub(crate) mod format;
pub(crate) mod kubexit;
pub(crate) mod owner;
pub(crate) mod quiet;
pub(crate) mod read;
pub(crate) mod tombstone;
pub(crate) mod trust;
pub(crate) mod unit;
pub(crate) mod write;
