//! One module per console page. Handlers call the API through
//! [`crate::api::Api`] and render with [`crate::layout::Page`].

pub mod check;
pub mod config;
pub mod exports;
pub mod providers;
pub mod signin;
pub mod status;
pub mod vex;
