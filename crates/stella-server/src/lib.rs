//! The Stella service behind `stella serve`.
//!
//! [`serve`] runs the HTTP API (axum) on a [`stella_store::Store`];
//! [`admin`] holds the operations `stella serve init|migrate` and
//! `stella admin ...` run directly on the data directory or database.
//! Conventions live in one place each: errors and their HTTP mapping in
//! [`error`], authentication in [`auth`], per-request logging, trace ids,
//! metrics and rate limiting in [`middleware`].
//!
//! This crate is not used by the CLI's verification path; it only sits on
//! top of `stella-store`.

pub mod admin;
pub mod auth;
pub mod config;
pub mod error;
mod exports;
pub mod materializer;
mod metrics;
mod middleware;
pub mod openapi;
mod ratelimit;
pub mod registry_auth;
pub mod report_keys;
mod routes;
mod state;
pub mod vex;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::ServerConfig;
use crate::state::AppState;

pub use admin::AdminError;

/// Multipart framing allowance on top of the artifact cap.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Builds the router with every route and middleware.
fn router(state: AppState) -> Router {
    let cap = usize::try_from(state.config.artifact_max_bytes).unwrap_or(usize::MAX);
    let upload_limit = DefaultBodyLimit::max(cap.saturating_add(MULTIPART_OVERHEAD));
    let timeout = Duration::from_secs(state.config.request_timeout_seconds);
    let api = Router::new()
        .route("/connect/token", post(routes::token::token))
        .route("/.well-known/jwks.json", get(routes::ops::jwks))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/version", get(routes::ops::version))
        .route("/openapi/v1.json", get(routes::ops::openapi_json))
        .route("/openapi/v1.yaml", get(routes::ops::openapi_yaml))
        .route(
            "/excititor/providers/{providerId}/artifacts",
            get(routes::artifacts::list)
                .post(routes::artifacts::upload)
                .layer(upload_limit),
        )
        .route(
            "/excititor/providers/{providerId}/artifacts/{artifactId}",
            get(routes::artifacts::get).delete(routes::artifacts::delete),
        )
        .route("/verify/policies", get(routes::verify::policies))
        .route("/verify/image", post(routes::verify::verify_image))
        .merge(routes_vex())
        .merge(routes_policy())
        .merge(routes_exports());
    // The web console is a client of the routes above, called in-process.
    let console = stella_console::router(
        api.clone().with_state(state.clone()),
        console_options(&state),
    );
    api.merge(console)
        .fallback(|| async { error::ApiError::NotFound("route".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limit,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

fn console_options(state: &AppState) -> stella_console::ConsoleOptions {
    stella_console::ConsoleOptions {
        // `stella serve` speaks plain HTTP; behind a TLS-terminating proxy
        // listed in `console.trustedProxies` the cookies become `Secure`.
        secure_cookies: false,
        max_upload_bytes: state.config.artifact_max_bytes,
        session_store: Some(state.store.clone()),
        trusted_proxies: state.config.console_trusted_proxies.clone(),
    }
}

/// The OpenVEX provider configuration and statement routes.
fn routes_vex() -> Router<AppState> {
    Router::new()
        .route(
            "/excititor/providers",
            get(routes::providers::list_providers),
        )
        .route(
            "/excititor/providers/{providerId}/config",
            get(routes::providers::get_provider_config).put(routes::providers::put_provider_config),
        )
        .route(
            "/excititor/providers/{providerId}/run",
            post(routes::providers::run_provider),
        )
        .route(
            "/excititor/providers/{providerId}/status",
            get(routes::providers::provider_status),
        )
        .route("/vex/statements", get(routes::vex::list_vex_statements))
        .route("/vex/consensus", get(routes::vex::get_vex_consensus))
        .route(
            "/vex/trust",
            get(routes::vex::get_vex_trust).put(routes::vex::put_vex_trust),
        )
}

/// The policy store and report routes.
fn routes_policy() -> Router<AppState> {
    Router::new()
        .route("/policy/import", post(routes::policy::import))
        .route("/policy/export", get(routes::policy::export))
        .route("/policy/validate", post(routes::policy::validate))
        .route("/policy/preview", post(routes::policy::preview))
        .route("/policy/activate", post(routes::policy::activate))
        .route("/api/v1/reports", post(routes::reports::create_report))
        .route("/api/v1/reports/keys", get(routes::reports::report_keys))
}

/// The Export Center job routes (`crate::exports`).
fn routes_exports() -> Router<AppState> {
    Router::new()
        .route(
            "/exports",
            get(routes::exports::list).post(routes::exports::create),
        )
        .route("/exports/signing-key", get(routes::exports::signing_key))
        .route(
            "/exports/{id}",
            get(routes::exports::get).delete(routes::exports::delete),
        )
        .route("/exports/{id}/events", get(routes::exports::events))
        .route("/exports/{id}/download", get(routes::exports::download))
}

/// Runs due OpenVEX providers: first a second after start, then every
/// [`vex::runner::TICK`] (each provider on its own `pollInterval`).
async fn vex_runner_loop(store: stella_store::Store) {
    let materializer = materializer::Materializer::new(&std::env::temp_dir());
    tokio::time::sleep(Duration::from_secs(1)).await;
    loop {
        vex::runner::run_due(&store, &materializer).await;
        tokio::time::sleep(vex::runner::TICK).await;
    }
}

/// Sets up `tracing` output on stderr (one line per event). Safe to call
/// more than once.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

/// Runs the server until SIGTERM or Ctrl-C, then drains in-flight requests.
/// Applies pending migrations first (through `migrationDatabase` when set)
/// and, on Postgres, refuses a connection role that row-level security
/// would not bind. `on_listening` is called with the
/// bound address (useful with port 0).
pub async fn serve(
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), AdminError> {
    let store = admin::open_configured(&config).await?;
    if let Err(e) = store.check_service_role().await {
        store.close().await;
        return Err(e.into());
    }
    let scratch = materializer::Materializer::new(&std::env::temp_dir());
    match scratch.sweep() {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed artifact scratch dirs left by a crash"),
        Err(e) => tracing::warn!(error = %e, "sweeping artifact scratch dirs failed"),
    }
    std::fs::create_dir_all(config.data_dir.join("tmp"))
        .map_err(|e| AdminError::Io(format!("{}: {e}", config.data_dir.join("tmp").display())))?;
    let authority = auth::Authority::new(
        store.clone(),
        config.data_dir.clone(),
        config.issuer.clone(),
        config.audience.clone(),
        config.token_ttl_seconds,
        &config.external_issuers,
        Duration::from_millis(config.revocation_recheck_millis),
    )
    .await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let exports = Arc::new(exports::ExportService::new(
        store.clone(),
        config.data_dir.clone(),
        metrics.clone(),
    ));
    match exports.fail_interrupted().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            jobs = n,
            "marked export jobs a restart interrupted as failed"
        ),
        Err(e) => tracing::warn!(error = %e, "marking interrupted export jobs failed"),
    }
    let state = AppState::new(state::AppParts {
        store: store.clone(),
        limiter: Arc::new(ratelimit::RateLimiter::new(config.rate_limit_per_second)),
        config: Arc::new(config.clone()),
        authority: Arc::new(authority),
        metrics,
        upload_permits: Arc::new(tokio::sync::Semaphore::new(state::CONCURRENT_UPLOADS)),
        exports: exports.clone(),
        report_cache: Arc::new(stella_report::cache::ScannerCache::new(
            config.report_cache_bounds(),
        )),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| AdminError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| AdminError::Io(e.to_string()))?;
    on_listening(bound);
    tracing::info!(address = %bound, database = %config::redact_url(&config.database), "stella serve listening");
    let runner = tokio::spawn(vex_runner_loop(store.clone()));
    // Event streams of running exports never end on their own: close
    // them when shutdown starts, so draining does not wait for them.
    let closing = exports.clone();
    tokio::spawn(async move {
        termination().await;
        closing.close_streams();
    });
    let header_timeout = Duration::from_secs(config.header_read_timeout_seconds);
    accept_loop(listener, router(state), header_timeout).await;
    runner.abort();
    store.close().await;
    tracing::info!("stella serve stopped");
    Ok(())
}

/// Serves connections (HTTP/1.1) until SIGTERM or Ctrl-C, then stops
/// accepting, asks every connection to finish its in-flight request and
/// waits for them. Each connection must send a complete request head within
/// `header_timeout` (slow clients are dropped).
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, header_timeout: Duration) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_connection(stream, peer, app.clone(), header_timeout, stop_rx.clone());
                    connections.spawn(conn);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tower_service::Service;
    let service =
        hyper::service::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            async move { app.call(request).await }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(middleware::HYPER_MAX_BUF)
        .max_headers(middleware::HYPER_MAX_HEADERS)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stopping| *stopping) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

async fn shutdown_signal() {
    termination().await;
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// SIGTERM or Ctrl-C.
async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
