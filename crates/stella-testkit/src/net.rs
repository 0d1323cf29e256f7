//! Loopback port helpers.

use crate::TestkitError;

/// Returns a currently free TCP port on 127.0.0.1 (bind port 0, read it, release it).
/// Another process may take it before the caller binds; callers retry on collision.
pub fn free_port() -> Result<u16, TestkitError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TestkitError::io("binding 127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| TestkitError::io("reading local address", e))?
        .port();
    drop(listener);
    Ok(port)
}
