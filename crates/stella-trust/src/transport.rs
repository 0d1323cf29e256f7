//! How tough fetches files: `http(s)://` through Stella's one HTTP stack
//! (reqwest + rustls, with connect, read and per-file deadlines) and
//! `file://` through tough's own filesystem transport. Verifies nothing:
//! every byte fetched here is checked by tough against signed metadata.

use std::time::Duration;

use futures_util::TryStreamExt as _;
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

use crate::error::TrustError;

/// Deadlines for talking to a mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection.
    pub connect: Duration,
    /// Between two reads of a response.
    pub read: Duration,
    /// For one file, from the request to the last byte.
    pub per_file: Duration,
    /// For the whole update.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            per_file: Duration::from_secs(60),
            total: Duration::from_secs(300),
        }
    }
}

/// A tough [`Transport`] over reqwest, plus `file://`.
#[derive(Debug, Clone)]
pub struct MirrorTransport {
    http: reqwest::Client,
    per_file: Duration,
}

impl MirrorTransport {
    /// `extra_ca_pem`: PEM certificates trusted for the mirror's TLS on
    /// top of the system roots (a private mirror behind a company CA).
    pub fn new(
        timeouts: &Timeouts,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<MirrorTransport, TrustError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read);
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| TrustError::BadInputFile {
                    what: "CA file",
                    path: "(the extra CA certificates)".into(),
                    reason: "holds no usable PEM certificate".into(),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| TrustError::Network {
            mirror: String::new(),
            reason: format!("cannot set up the HTTP client: {e}"),
        })?;
        Ok(MirrorTransport {
            http,
            per_file: timeouts.per_file,
        })
    }

    async fn fetch_http(&self, url: Url) -> Result<TransportStream, TransportError> {
        let response = self
            .http
            .get(url.clone())
            .timeout(self.per_file)
            .send()
            .await
            .map_err(|e| {
                TransportError::new_with_cause(TransportErrorKind::Other, &url, chain(&e))
            })?;
        let status = response.status();
        if !status.is_success() {
            // CDNs in front of object stores answer 403 for absent objects.
            let kind = match status.as_u16() {
                403 | 404 | 410 => TransportErrorKind::FileNotFound,
                _ => TransportErrorKind::Other,
            };
            return Err(TransportError::new_with_cause(
                kind,
                &url,
                format!("HTTP status {status}"),
            ));
        }
        let stream = response.bytes_stream().map_err(move |e| {
            TransportError::new_with_cause(TransportErrorKind::Other, &url, chain(&e))
        });
        Ok(Box::pin(stream))
    }
}

/// An error and its causes on one line ("error sending request: ...:
/// Connection refused"); reqwest's own message leaves the causes out.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !out.contains(&part) {
            out.push_str(": ");
            out.push_str(&part);
        }
        source = s.source();
    }
    out
}

#[tough::async_trait]
impl Transport for MirrorTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        match url.scheme() {
            "http" | "https" => self.fetch_http(url).await,
            "file" => FilesystemTransport.fetch(url).await,
            _ => Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url,
            )),
        }
    }
}
