//! Every system call the crate makes.

pub(crate) mod fs;
pub(crate) mod proc;
