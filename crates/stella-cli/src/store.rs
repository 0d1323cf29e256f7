//! Opening the store a user's reference names: a local OCI image layout
//! (`oci:<dir>[:tag|@digest]`) or a registry repository, with the registry
//! client built from the global flags (including `--password-stdin`).
//!
//! What this module does not do: talk to registries itself or print.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use stella_oci::AnyStore;
use stella_oci::layout::OciLayout;
use stella_oci::registry::credentials::{
    ChainCredentials, CredentialProvider, Credentials, DockerConfigCredentials, StaticCredentials,
};
use stella_oci::registry::{RegistryClient, RegistryOptions, RegistryWords};
use stella_types::Reference;

use crate::cli::RegistryArgs;

/// Whether a command may create a missing layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The layout must already exist (reading, or writing about an image in it).
    Existing,
    /// A missing layout directory is created (a push or import target).
    #[allow(dead_code)]
    CreateLayout,
}

/// Parses a user reference, with a message naming it on failure.
pub fn parse_reference(s: &str) -> anyhow::Result<Reference> {
    Reference::parse(s).with_context(|| format!("invalid reference {s:?}"))
}

/// Builds a registry client from the global flags for the registry host
/// `registry` (`host[:port]`). With `--password-stdin` the password (or
/// token) is the first line of standard input, and those credentials are
/// for `registry` only; any other host gets the docker config's.
pub fn registry_client(args: &RegistryArgs, registry: &str) -> anyhow::Result<RegistryClient> {
    let explicit = match (&args.username, args.password_stdin) {
        (Some(user), true) => Some(Credentials::new(user.clone(), read_password_stdin()?)),
        (None, true) => anyhow::bail!("--password-stdin needs --username (or STELLA_USERNAME)"),
        (Some(_), false) => anyhow::bail!("--username needs --password-stdin"),
        (None, false) => None,
    };
    let docker_config: Arc<dyn CredentialProvider> = Arc::new(DockerConfigCredentials::new(None));
    let credential_provider: Arc<dyn CredentialProvider> = match explicit {
        Some(c) => Arc::new(ChainCredentials::new(vec![
            Arc::new(StaticCredentials::new().with_host(registry, c)),
            docker_config,
        ])),
        None => docker_config,
    };
    let options = RegistryOptions {
        plain_http: args.plain_http,
        ca_file: args.ca_file.clone(),
        credential_provider: Some(credential_provider),
        no_cross_host_realm: args.no_cross_host_realm,
        unsafe_single_writer: args.unsafe_single_writer,
        words: RegistryWords {
            log_in: "log in with --username/--password-stdin or docker login".into(),
            use_plain_http: "use --plain-http".into(),
            trust_ca: "trust the registry's CA with --ca-file".into(),
            strict_realm: "--no-cross-host-realm".into(),
        },
        ..RegistryOptions::default()
    };
    RegistryClient::new(options).context("cannot set up the registry client")
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut buf = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .context("cannot read the password from standard input")?;
    let pw = buf
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string();
    if pw.is_empty() {
        anyhow::bail!("--password-stdin: standard input was empty");
    }
    Ok(pw)
}

/// Opens the store `reference` names. A layout is opened as is
/// ([`OpenMode::Existing`]: it must exist) or created if missing; a registry
/// repository gets a client built from `args` (only then is stdin read).
pub fn open_store(
    reference: &Reference,
    args: &RegistryArgs,
    mode: OpenMode,
) -> anyhow::Result<AnyStore> {
    match reference {
        Reference::Layout(l) => {
            let layout = match mode {
                OpenMode::Existing => OciLayout::open(&l.dir)?,
                OpenMode::CreateLayout => OciLayout::open_or_create(&l.dir)?,
            };
            Ok(AnyStore::Layout(layout))
        }
        Reference::Registry(r) => {
            let client = registry_client(args, &r.registry)?;
            Ok(stella_oci::open_store(reference, &client)?)
        }
    }
}

/// Parses `s` and opens its store.
pub fn open(s: &str, args: &RegistryArgs, mode: OpenMode) -> anyhow::Result<(Reference, AnyStore)> {
    let reference = parse_reference(s)?;
    let store = open_store(&reference, args, mode)?;
    Ok((reference, store))
}
