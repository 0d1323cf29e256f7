//! Running filesystem work off the async executor: every `std::fs` call and
//! `flock` that async code needs goes through [`run`], which uses tokio's
//! blocking thread pool, so a store never stalls the worker threads of a
//! server.
//!
//! What this module does not do: decide what the work is.

use crate::OciError;

/// Runs `work` on tokio's blocking pool and returns its result. `what`
/// names the work for the error if the blocking task panicked or was
/// cancelled by a runtime shutdown.
pub(crate) async fn run<T, F>(what: &str, work: F) -> Result<T, OciError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, OciError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(OciError::io(
            format!("{what}: the blocking task did not finish"),
            std::io::Error::other(e.to_string()),
        )),
    }
}
