//! OpenVEX in the service: turning the engine's verified OpenVEX evidence
//! into stored statements ([`ingest`]) and answering statement and
//! consensus queries from the store ([`query`]). The CLI's `stella vex
//! ingest` / `stella vex query --db` and the server's provider runner and
//! `/vex/*` routes call these same functions. [`provider`] holds the
//! provider catalog and the one configuration validator; [`tuf_state`]
//! what the runner keeps of its TUF client between runs; [`listed`] the
//! registry as one image's discovery reads it (listings read once).
//!
//! Not here: discovery or verification (`stella_engine::vex`), OpenVEX
//! rules or consensus (`stella_vex`), HTTP.

pub mod ingest;
pub mod listed;
pub mod poll;
pub mod provider;
pub mod query;
pub mod runner;
pub mod tuf_state;
