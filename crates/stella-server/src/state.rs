//! Shared state handed to every handler.

use std::sync::Arc;

use stella_store::Store;

use crate::auth::Authority;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub authority: Arc<Authority>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
}
