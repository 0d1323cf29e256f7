//! Route handlers. Handlers are thin: they extract, check the scope, call
//! the store or the authority, and shape the answer. Errors go through
//! [`crate::error::ApiError`].

pub mod artifacts;
pub mod exports;
pub mod ops;
pub mod policy;
pub mod providers;
pub mod reports;
pub mod token;
pub mod verify;
pub mod vex;
