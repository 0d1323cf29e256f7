//! Every command and flag of `stella`, with its help text, in one place.
//! Parsing only: resolving what the user typed against the environment and
//! config happens in the command modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stella stores, discovers, exports and verifies supply-chain evidence
/// (SBOMs, VEX, provenance, signatures) for container images, as OCI 1.1
/// referrers in a registry or a local OCI layout.
///
/// References are `host[:port]/repo:tag`, `host[:port]/repo@sha256:…`, or a
/// local OCI image layout `oci:<dir>:<tag>` / `oci:<dir>@<digest>`.
///
/// Exit codes: 0 success, 1 verification or policy failure, 2 usage or
/// input error (network, missing file, bad reference...).
#[derive(Debug, Parser)]
#[command(
    name = "stella",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub service: ServiceClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands (`stella auth`, `stella vex`) reach a Stella server.
#[derive(Debug, Clone, Args)]
pub struct ServiceClientArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Access token for the Stella server; default: the one `stella auth
    /// login` cached.
    #[arg(long, global = true, env = "STELLA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// When the server answers 429, wait its Retry-After (at most 60 s) and
    /// retry once.
    #[arg(
        long,
        global = true,
        env = "STELLA_WAIT_QUOTA",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub wait_quota: bool,
}

/// The Stella server a client command talks to (part of the global
/// [`ServiceClientArgs`]).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Stella server (client commands).
    #[arg(
        long,
        global = true,
        env = "STELLA_SERVER",
        default_value = "http://localhost:8080",
        value_name = "URL"
    )]
    pub server: String,
}

/// How to reach registries. Credentials otherwise come from
/// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), including
/// credential helpers.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryArgs {
    /// Registry user name (use with --password-stdin).
    #[arg(long, global = true, env = "STELLA_USERNAME")]
    pub username: Option<String>,
    /// Read the registry password or token from standard input.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// PEM file of extra CA certificates to trust for registry (and TUF mirror) TLS.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Talk plain HTTP to registries (no TLS). For local test registries.
    #[arg(long, global = true)]
    pub plain_http: bool,
    /// Skip the re-check that protects a referrers fallback index from
    /// concurrent writers (saves ~0.4 s per push). Only safe when nothing
    /// else attaches evidence to the same image at the same time.
    #[arg(long, global = true, env = "STELLA_UNSAFE_SINGLE_WRITER")]
    pub unsafe_single_writer: bool,
    /// Never show progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Never send registry credentials to a token server on another host
    /// than the registry. By default the token realm the registry itself
    /// names is trusted, as docker does (e.g. Docker Hub's auth.docker.io).
    #[arg(long, global = true, env = "STELLA_NO_CROSS_HOST_REALM")]
    pub no_cross_host_realm: bool,
    /// Stop the whole command after this long (e.g. 90s, 10m, 1h), with
    /// exit code 2. Every registry request also has its own deadlines
    /// (connect 15s, 60s without data, 120s per request plus time for its
    /// size).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration, env = "STELLA_TIMEOUT")]
    pub timeout: Option<Duration>,
}

/// `<number>[ms|s|m|h]` (seconds without a unit), more than zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 10m, 1h)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".to_string());
    }
    Ok(d)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store, list, fetch and delete evidence attached to images as OCI referrers.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign a predicate about an image as an in-toto attestation and attach it.
    Attest(AttestArgs),
    /// Verify attestations, blobs and images.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Inspect, verify and import StellaBundles (offline evidence bundles).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Check evidence policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Keep the sigstore trusted root up to date through TUF, and show it.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Run the Stella service (REST API), or set up its data directory.
    Serve(ServeArgs),
    /// Administer the service's clients and keys, directly on its data
    /// directory or database (a running server is not needed).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Log in to a Stella server (OAuth client credentials) and inspect or
    /// drop the cached token.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// VEX provider operations on a Stella server.
    #[command(subcommand)]
    Vex(VexCommand),
    /// Export Center: reproducible, signed mirror exports (full and delta)
    /// and JSON evidence exports of many images; verify, inspect, import.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Judge an image's scanner findings, minus what trusted VEX says does
    /// not apply, against a policy's rules; print (and sign) the report.
    ///
    /// Exit 0 pass (warn counts as pass, with a note), 1 blocked, 2 error.
    Report(ReportArgs),
}

/// Sigstore trust roots fetched through TUF into the user's cache
/// (`$STELLA_CACHE_DIR/tuf`, else `$XDG_CACHE_HOME/stella/tuf`, else
/// `~/.cache/stella/tuf`). Verification commands use the cached root,
/// offline, when no --trusted-root is given.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Refresh the sigstore trusted_root.json from a TUF repository into the cache.
    ///
    /// Every TUF check applies (signature thresholds, expiry, rollback,
    /// target hashes); a refused or failed update leaves the cache as it was
    /// (exit 1 when a check refused the metadata, 2 for network or input
    /// errors).
    Update(TrustUpdateArgs),
    /// Show the cached trusted root: mirror, TUF metadata versions and
    /// expiry, CAs, transparency logs, CT logs, TSAs and the cache's age.
    Show(TrustShowArgs),
}

#[derive(Debug, Args)]
pub struct TrustUpdateArgs {
    /// TUF repository (https://, http:// or file://); metadata is signed, so
    /// the transport need not be trusted.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://tuf-repo-cdn.sigstore.dev"
    )]
    pub tuf_mirror: String,
    /// TUF root.json to start from, trusted out of band. Default: the root
    /// cached by the last update of this mirror, else the one built into
    /// stella (public-good mirror only, when this build embeds it).
    #[arg(long, value_name = "ROOT_JSON")]
    pub tuf_root: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct TrustShowArgs {
    /// Show this mirror's cache instead of the mirror last updated.
    #[arg(long, value_name = "URL")]
    pub tuf_mirror: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file; errors and warnings carry a JSON path.
    Validate(PolicyValidateArgs),
}

#[derive(Debug, Args)]
pub struct PolicyValidateArgs {
    /// The policy (YAML).
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TextOrJson {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
    Tree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum KeyAlgorithm {
    #[default]
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    Ed25519,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Push files as an OCI 1.1 artifact whose subject is the image.
    PushReferrer(PushReferrerArgs),
    /// List the referrers of an image (sorted; tree shows referrers of referrers).
    ListReferrers(ListReferrersArgs),
    /// Download a referrer artifact's files after checking every digest and size.
    PullReferrer(PullReferrerArgs),
    /// Delete a referrer manifest and its entry in the fallback index.
    DeleteReferrer(DeleteReferrerArgs),
    /// Check and mend a subject's referrers fallback index (tag schema).
    RepairIndex(RepairIndexArgs),
    /// Export an image and all its evidence into a deterministic StellaBundle.
    ExportBundle(ExportBundleArgs),
}

#[derive(Debug, Args)]
pub struct PushReferrerArgs {
    /// The image the evidence is about (a tag is resolved to a digest once).
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// The artifact type, e.g. application/vnd.cyclonedx+json.
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: String,
    /// A file to attach (one layer per file). Repeatable.
    #[arg(long = "file", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// An annotation for the referrer manifest. Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ListReferrersArgs {
    /// The subject image.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only referrers of this artifact type. Repeatable.
    #[arg(long = "artifact-type", value_name = "TYPE")]
    pub artifact_types: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// How deep to follow referrers of referrers with --format tree (or json).
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PullReferrerArgs {
    /// The referrer artifact, pinned by digest.
    #[arg(value_name = "REF@DIGEST")]
    pub reference: String,
    /// Directory to write the artifact's files into.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeleteReferrerArgs {
    /// The referrer artifact, pinned by digest.
    #[arg(value_name = "REF@DIGEST")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct RepairIndexArgs {
    /// The subject image whose fallback index to check.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Report what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ExportBundleArgs {
    /// The image whose evidence to export.
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// Bundle file to write (default: stella-bundle-<hex12>.tar[.gz|.zst]).
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Include signed attestations (DSSE envelopes, sigstore bundles).
    #[arg(long)]
    pub include_dsse: bool,
    /// Include transparency-log material (Rekor entries, proofs, checkpoints).
    #[arg(long)]
    pub include_rekor_proof: bool,
    /// Include the image's config and layers, not just its manifest.
    #[arg(long)]
    pub include_image: bool,
    /// Only referrers of this artifact type. Repeatable.
    #[arg(long = "artifact-type", value_name = "TYPE")]
    pub artifact_types: Vec<String>,
    /// Sign the bundle manifest with this private key (DSSE).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub compression: Compression,
    /// Copy the graph into this repository as referrers instead of writing a tar.
    #[arg(long, value_name = "TARGET_REF")]
    pub push_referrers: Option<String>,
    /// Replace the --output file if it exists (without it, an existing file is an error).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a signing key pair (PKCS#8 private key, SPKI public key, PEM).
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    #[arg(long, value_enum, default_value_t)]
    pub algorithm: KeyAlgorithm,
    #[arg(long, value_name = "PATH")]
    pub output_key: PathBuf,
    #[arg(long, value_name = "PATH")]
    pub output_pub: PathBuf,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The image the attestation is about.
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// The predicate (JSON file).
    #[arg(long, value_name = "FILE")]
    pub predicate: PathBuf,
    /// Predicate type URI or alias: slsaprovenance, cyclonedx, spdx, openvex, vuln, verdict.
    #[arg(long = "type", value_name = "URI|ALIAS")]
    pub predicate_type: String,
    /// Private key (PKCS#8 PEM; passphrase from STELLA_PASSWORD or a prompt).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Signer certificate (PEM) issued by the organisation's CA.
    #[arg(long, value_name = "PEM")]
    pub certificate: Option<PathBuf>,
    /// Intermediate certificates (PEM) between the signer and the CA.
    #[arg(long, value_name = "PEM", requires = "certificate")]
    pub certificate_chain: Option<PathBuf>,
    /// Do not push; just write the bundle (see --output).
    #[arg(long)]
    pub no_push: bool,
    /// Also write the signed bundle to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Verify the attestations attached to an image.
    Attestation(VerifyAttestationArgs),
    /// Verify a blob (file or sha256 digest) against a sigstore bundle.
    Blob(VerifyBlobArgs),
    /// Judge an image's evidence (from the registry or a StellaBundle) against a policy.
    Image(VerifyImageArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["use_referrers", "bundle"])))]
pub struct VerifyImageArgs {
    /// The image (tag resolved to a digest once). Optional with --bundle.
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    /// Discover the evidence among the image's referrers in the registry or layout.
    #[arg(long)]
    pub use_referrers: bool,
    /// Verify the evidence a StellaBundle holds instead (offline).
    #[arg(long, value_name = "PATH", conflicts_with = "use_referrers")]
    pub bundle: Option<PathBuf>,
    /// Evidence policy (YAML). Without it, --require and the trust flags make an ad-hoc policy.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// An artifact or predicate type (or alias) that must be present and verified. Repeatable.
    #[arg(long = "require", value_name = "TYPE")]
    pub require: Vec<String>,
    /// Public key trusted to sign evidence. Repeatable. A private key given
    /// here is used only to sign the verdict (--attach-verdict), never trusted.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<PathBuf>,
    /// Organisation CA certificate (PEM) trusted to issue signers. Repeatable.
    #[arg(long = "trust-root", value_name = "PEM")]
    pub trust_roots: Vec<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// How deep to follow referrers of referrers.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
    /// Sign the report as a verdict attestation and attach it to the image
    /// (signing key: --verdict-key, or the private key given with --key).
    #[arg(long)]
    pub attach_verdict: bool,
    /// Private key that signs the verdict attestation.
    #[arg(long, value_name = "KEY")]
    pub verdict_key: Option<PathBuf>,
}

/// Keyless (sigstore) identity policy.
#[derive(Debug, Clone, Args, Default)]
pub struct KeylessArgs {
    /// sigstore trusted_root.json (Fulcio CAs, Rekor, CT logs, TSAs).
    /// Default: the root cached by `stella trust update` (used offline).
    #[arg(long, value_name = "JSON")]
    pub trusted_root: Option<PathBuf>,
    /// Exact certificate identity (SAN) required.
    #[arg(long, value_name = "ID")]
    pub certificate_identity: Option<String>,
    /// Regular expression the certificate identity must match.
    #[arg(long, value_name = "RE", conflicts_with = "certificate_identity")]
    pub certificate_identity_regexp: Option<String>,
    /// Exact OIDC issuer required.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// Regular expression the OIDC issuer must match.
    #[arg(long, value_name = "RE", conflicts_with = "certificate_oidc_issuer")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Verified transparency-log entries a keyless bundle must carry
    /// (default 1). 0 accepts bundles signed with only an RFC 3161
    /// timestamp; at least one timestamp must then verify.
    #[arg(long, value_name = "N")]
    pub tlog_threshold: Option<u8>,
    /// Verified RFC 3161 timestamps (from the trusted root's timestamp
    /// authorities) a keyless bundle must carry (default 0, but at least 1
    /// with --tlog-threshold 0).
    #[arg(long, value_name = "N")]
    pub timestamp_threshold: Option<u8>,
}

#[derive(Debug, Args)]
pub struct VerifyAttestationArgs {
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// Public key that must have signed. Repeatable.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// Organisation CA certificate (PEM) that must have issued the signer. Repeatable.
    #[arg(long = "trust-root", value_name = "PEM")]
    pub trust_roots: Vec<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// Only attestations of this predicate type (URI or alias).
    #[arg(long = "type", value_name = "URI|ALIAS")]
    pub predicate_type: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct VerifyBlobArgs {
    /// The artifact: a file path, or sha256:<hex> of it.
    #[arg(value_name = "FILE|sha256:HEX")]
    pub artifact: String,
    /// The sigstore bundle (JSON).
    #[arg(long, value_name = "JSON")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// Verify with this public key instead of a certificate identity.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Show what a StellaBundle holds.
    Inspect(BundleInspectArgs),
    /// Verify a StellaBundle fully offline.
    Verify(Box<BundleVerifyArgs>),
    /// Push a StellaBundle's image and evidence into a registry, digests preserved.
    Import(BundleImportArgs),
}

#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    #[arg(long, value_name = "PATH")]
    pub bundle: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct BundleVerifyArgs {
    #[arg(long, value_name = "PATH")]
    pub bundle: PathBuf,
    /// Organisation CA certificate (PEM). Repeatable.
    #[arg(long = "trust-root", value_name = "PEM")]
    pub trust_roots: Vec<PathBuf>,
    /// Public key trusted to sign attestations or the bundle manifest. Repeatable.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// A Rekor checkpoint obtained out of band that proofs must anchor to.
    #[arg(long, value_name = "PATH")]
    pub rekor_checkpoint: Option<PathBuf>,
    /// Accept inclusion proofs that cannot be tied to --rekor-checkpoint
    /// (same tree head or a consistency proof); they are still reported. Risky.
    #[arg(long, requires = "rekor_checkpoint")]
    pub allow_unanchored_proofs: bool,
    /// An artifact or predicate type that must be present and verified. Repeatable.
    #[arg(long = "require", value_name = "TYPE")]
    pub require: Vec<String>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct BundleImportArgs {
    #[arg(long, value_name = "PATH")]
    pub bundle: PathBuf,
    /// Target repository (registry or oci: layout).
    #[arg(long, value_name = "REF")]
    pub to: String,
}

// ---- stella serve / stella admin ----

/// Where the service keeps its data. Unset values come from `STELLA_*`
/// variables, `stella.local.yaml`, `stella.yaml`, then defaults
/// (`./stella-data`, SQLite at `<data-dir>/stella.db`).
#[derive(Debug, Clone, Args, Default)]
pub struct ServiceStoreArgs {
    /// Config file (YAML); `stella.local.yaml` beside it is read on top.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, e.g. `sqlite://./stella-data/stella.db` or
    /// `postgres://USER:PASSWORD@HOST/DB` (see docs/service.md for the
    /// Postgres owner and service roles).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Data directory (signing keys, temp files, default database).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    #[command(flatten)]
    pub store: ServiceStoreArgs,
    /// Address to listen on (port 0 picks a free port; the bound address
    /// is printed on the first line of standard output).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Create the data directory, a signing key and a first `admin` client
    /// (tenant `default`, every scope); prints the client secret once.
    Init(ServeInitArgs),
    /// Apply the embedded database migrations and exit.
    Migrate(ServiceStoreArgs),
}

#[derive(Debug, Args)]
pub struct ServeInitArgs {
    #[command(flatten)]
    pub store: ServiceStoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// OAuth clients (client-credentials grant).
    #[command(subcommand)]
    Clients(AdminClientsCommand),
    /// Token-signing keys.
    #[command(subcommand)]
    Keys(AdminKeysCommand),
    /// Per-tenant report-signing keys (POST /api/v1/reports).
    #[command(subcommand)]
    ReportKeys(AdminReportKeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminReportKeysCommand {
    /// Make a new report-signing key current for a tenant; the previous one
    /// stays published at /api/v1/reports/keys and verifies old reports.
    Rotate(AdminReportKeysRotateArgs),
}

#[derive(Debug, Args)]
pub struct AdminReportKeysRotateArgs {
    /// The tenant whose key is rotated.
    #[arg(long)]
    pub tenant: String,
    #[command(flatten)]
    pub store: ServiceStoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdminClientsCommand {
    /// Add a client and print its secret once.
    Add(AdminClientAddArgs),
    /// List clients (never their secrets).
    List(AdminClientListArgs),
    /// Revoke a client; its tokens stop working at once.
    Revoke(AdminClientRevokeArgs),
}

#[derive(Debug, Args)]
pub struct AdminClientAddArgs {
    /// Client id (1-64 of A-Z a-z 0-9 . _ -).
    pub client_id: String,
    /// The tenant the client's tokens act for.
    #[arg(long)]
    pub tenant: String,
    /// Comma-separated scopes: vex.read, vex.admin, evidence.read,
    /// evidence.write, export.read, export.admin, admin, policy.read,
    /// policy.write, scanner.reports.
    #[arg(long)]
    pub scopes: String,
    #[command(flatten)]
    pub store: ServiceStoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct AdminClientListArgs {
    #[command(flatten)]
    pub store: ServiceStoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct AdminClientRevokeArgs {
    pub client_id: String,
    #[command(flatten)]
    pub store: ServiceStoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdminKeysCommand {
    /// Make a new signing key current; tokens signed by the old one stay
    /// valid until they expire.
    Rotate(ServiceStoreArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Get a token with client credentials and cache it (0600, under
    /// `$XDG_CONFIG_HOME/stella/`, default `~/.config/stella/`).
    Login(AuthLoginArgs),
    /// Show the cached token's server, client, scopes and expiry.
    Status(AuthShowArgs),
    /// Show the cached token's claims (subject, tenant, issuer, audience,
    /// scopes, remaining lifetime).
    Whoami(AuthShowArgs),
    /// Remove the cached token.
    Logout,
}

#[derive(Debug, Args)]
pub struct AuthLoginArgs {
    #[arg(long)]
    pub client_id: String,
    /// Read the client secret from standard input.
    #[arg(long, required = true)]
    pub client_secret_stdin: bool,
    /// Space-separated subset of the client's scopes.
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuthShowArgs {
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum VexCommand {
    /// VEX providers.
    #[command(subcommand)]
    Providers(VexProvidersCommand),
    /// Merge OpenVEX documents offline into one valid document: one
    /// statement per (product, vulnerability), decided by consensus across
    /// issuers (the documents' authors; unsigned), deterministic.
    Merge(VexMergeArgs),
    /// Find, verify and store the OpenVEX attestations of images into a
    /// local SQLite database, without a server (the provider runner's work).
    Ingest(VexIngestArgs),
    /// Query stored statements or their consensus, from a local database
    /// (--db) or a Stella server (--server/--token).
    Query(VexQueryArgs),
}

#[derive(Debug, Args)]
pub struct VexIngestArgs {
    /// Image reference (registry `host/repo:tag|@digest` or `oci:<dir>:<tag>`). Repeatable.
    #[arg(long = "image", value_name = "REF", required = true)]
    pub images: Vec<String>,
    /// Public key that must have signed. Repeatable.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// Organisation CA certificate (PEM) that must have issued the signer. Repeatable.
    #[arg(long = "trust-root", value_name = "PEM")]
    pub trust_roots: Vec<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// SQLite database to write (created and migrated if needed).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Also ingest plain (unsigned) `application/openvex+json` referrers,
    /// recorded as unsigned (issuer `unsigned:<author>`).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Provider id recorded with the statements.
    #[arg(long, default_value = "excititor:oci-openvex")]
    pub provider: String,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct VexQueryArgs {
    /// Product: purl (`pkg:oci/...@sha256%3A...`), IRI or image digest.
    #[arg(long)]
    pub product: String,
    #[arg(long)]
    pub vulnerability: Option<String>,
    /// Only statements of this issuer (not with --consensus).
    #[arg(long, conflicts_with = "consensus")]
    pub issuer: Option<String>,
    /// The consensus across issuers instead of the statements.
    #[arg(long)]
    pub consensus: bool,
    /// Issuer trust configuration for --consensus with --db (YAML/JSON).
    #[arg(long, requires = "db")]
    pub trust: Option<PathBuf>,
    /// Local SQLite database written by `stella vex ingest`.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct VexMergeArgs {
    /// OpenVEX documents (JSON).
    #[arg(required = true)]
    pub documents: Vec<std::path::PathBuf>,
    /// Issuer trust configuration (YAML or JSON: `issuers: [{issuer, weight}]`,
    /// `defaultWeight`); default: every issuer weighs the same.
    #[arg(long)]
    pub trust: Option<std::path::PathBuf>,
    /// Write the merged document here (atomically) instead of stdout.
    #[arg(long)]
    pub output_file: Option<std::path::PathBuf>,
    /// text: the merged document on stdout, a summary on stderr; json: a
    /// summary with the consensus of every pair (with --output-file) or the
    /// document.
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum VexProvidersCommand {
    /// List a provider's staged artifacts (metadata, every page).
    Artifacts(VexArtifactsArgs),
    /// Change a provider's configuration on a Stella server: subscribe
    /// images, upload trust material into artifact fields, set fields.
    Configure(VexConfigureArgs),
    /// Show a provider's configuration, field shapes and readiness.
    Show(VexShowArgs),
    /// Run a provider now on the server and show the run's summary
    /// (exit 1 when the run did not succeed).
    Run(VexShowArgs),
    /// Show the last run of a provider and of each subscribed image.
    Status(VexShowArgs),
}

#[derive(Debug, Args)]
pub struct VexConfigureArgs {
    /// Provider id, e.g. `excititor:oci-openvex`.
    pub provider: String,
    /// Subscribe this image (replaces the subscriptions). Repeatable.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Upload a file and reference it from an artifact field
    /// (`cosignKeys=@cosign.pub`; list fields get it appended). Repeatable.
    #[arg(long = "upload-artifact", value_name = "FIELD=@PATH")]
    pub upload_artifacts: Vec<String>,
    /// Clear an artifact field (the artifact stays staged). Repeatable.
    #[arg(long = "clear-artifact", value_name = "FIELD")]
    pub clear_artifacts: Vec<String>,
    /// Set a field (`cosignMode=keypair`). Repeatable.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Afterwards, list the provider's staged artifacts.
    #[arg(long)]
    pub list_artifacts: bool,
    /// Only validate (nothing is uploaded or saved; uploads stand in as
    /// placeholders, so only their shape is checked).
    #[arg(long)]
    pub validate_only: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct VexShowArgs {
    /// Provider id, e.g. `excititor:oci-openvex`.
    pub provider: String,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct VexArtifactsArgs {
    /// Provider id, e.g. `excititor:oci-openvex`.
    pub provider: String,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// The image (registry reference, or oci:<dir>:<tag> / oci:<dir>@<digest>).
    #[arg(long, value_name = "REF", required = true)]
    pub image: Option<String>,
    /// Policy (YAML) with the rules: and vex: sections. Without it every
    /// finding passes and no VEX counts.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// The environment the report is for (matched by rules' environments).
    #[arg(long, value_name = "ENV")]
    pub environment: Option<String>,
    /// A scanner report file to judge as well as those attached to the
    /// image (Trivy, Grype, CycloneDX, SARIF, in-toto vulns). Repeatable.
    #[arg(long = "scan", value_name = "FILE")]
    pub scans: Vec<PathBuf>,
    /// Private key that signs the report (DSSE, payloadType
    /// application/vnd.stellaops.report+json).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// sigstore trusted_root.json for keyless policy signers (default: the cached root).
    #[arg(long, value_name = "JSON")]
    pub trusted_root: Option<PathBuf>,
    /// How deep to follow referrers of referrers.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// text, or json: the {report, dsse} object (dsse absent without --sign-key).
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
    /// With --server (and no --policy): the server's policy revision to
    /// judge with (default: the tenant's active revision); the server
    /// computes and signs the report. With --policy: the revision id the
    /// report records (default `local`), e.g. for a file exported from the
    /// server with `GET /policy/export`.
    #[arg(long, value_name = "ID")]
    pub policy_revision: Option<String>,
    /// With --server: the server also pushes the signed report as a
    /// referrer of the image (the verdict attestation of `verify image
    /// --attach-verdict`, signed with the tenant's report key).
    #[arg(long)]
    pub attach: bool,
    /// With --server: the tenant's docker config.json artifact the server
    /// reads (and, with --attach, pushes to) the registry with; default:
    /// anonymous.
    #[arg(long, value_name = "ARTIFACT_ID")]
    pub registry_auth: Option<String>,
    /// With --registry-auth: the provider the artifact is staged under
    /// (default `exports`).
    #[arg(long, value_name = "PROVIDER", requires = "registry_auth")]
    pub registry_auth_provider: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check a signed report: the envelope's signature with --key, its
    /// payloadType, and that the payload is the canonical report. Exit 0
    /// verified, 1 not verified, 2 unreadable input.
    Verify(ReportVerifyArgs),
}

#[derive(Debug, Args)]
pub struct ReportVerifyArgs {
    /// The {report, dsse} JSON that `stella report --output json --sign-key` printed.
    #[arg(value_name = "REPORT_JSON")]
    pub report: PathBuf,
    /// Public key that must have signed. Repeatable.
    #[arg(long = "key", value_name = "PUB", required = true)]
    pub keys: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}

// ---- stella export ----

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Export a selection of images with their evidence; prints the
    /// digest of the export's manifest.json.
    Run(Box<ExportRunArgs>),
    /// Verify an export offline (directory, archive, parts or encrypted).
    Verify(ExportVerifyArgs),
    /// Show what an export holds.
    Inspect(ExportInspectArgs),
    /// Recreate an export's repositories (tags, digests, referrers) under
    /// a registry prefix or in OCI layouts under a directory.
    Import(ExportImportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportProfileArg {
    #[value(name = "mirror:full")]
    MirrorFull,
    #[value(name = "mirror:delta")]
    MirrorDelta,
    #[value(name = "json:raw")]
    JsonRaw,
}

#[derive(Debug, Args)]
pub struct ExportRunArgs {
    /// mirror:full (an OCI layout of every image, all platforms, all
    /// referrers), mirror:delta (only what --since lacks) or json:raw (one
    /// canonical JSON per evidence document).
    #[arg(long, value_enum)]
    pub profile: ExportProfileArg,
    /// An image to export (registry or oci: reference). Repeatable.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// A file with one image reference per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub images_file: Option<PathBuf>,
    /// A repository (`registry/repo`) exported with every tag. Repeatable.
    #[arg(long = "repository", value_name = "REGISTRY/REPO")]
    pub repositories: Vec<String>,
    /// The previous export (or its manifest.json) a mirror:delta builds on.
    #[arg(long, value_name = "EXPORT")]
    pub since: Option<PathBuf>,
    /// A directory, or an archive: `*.tar` or `*.tar.zst`.
    #[arg(long, value_name = "DIR|FILE")]
    pub output: PathBuf,
    /// Sign manifest.json (DSSE) with this private key.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// Encrypt the archive to this age recipient (age1… or ssh-ed25519 …). Repeatable.
    #[arg(long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// A file of age recipients, one per line.
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Option<PathBuf>,
    /// Split the archive into parts of at most this size (e.g. 700M, 4G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_part_size: Option<u64>,
    /// Platforms to keep from image indexes: `all` or a list like
    /// `linux/amd64,linux/arm64/v8`.
    #[arg(long, value_name = "all|LIST", default_value = "all")]
    pub include_platforms: String,
    /// age identity file to read an encrypted --since export.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// What to print: the manifest digest (text) or a JSON summary.
    #[arg(long, value_enum, default_value_t)]
    pub format: TextOrJson,
}

/// `<number>[K|M|G|T][i][B]` (binary multiples), more than zero.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 700M, 4G)"))?;
    let unit = unit
        .trim()
        .trim_end_matches(['B', 'b'])
        .trim_end_matches('i');
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} (use K, M, G or T)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err("the size must be more than zero".into());
    }
    Ok(v)
}

#[derive(Debug, Args)]
pub struct ExportVerifyArgs {
    /// The export: a directory, `*.tar[.zst]`, its `*.parts.json`, or an encrypted archive.
    #[arg(value_name = "EXPORT")]
    pub export: PathBuf,
    /// Public key trusted to sign manifest.json. Repeatable; with a key an
    /// unsigned export fails.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// age identity file (or unencrypted ssh-ed25519 key) to decrypt the export.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Keyless: a sigstore bundle over manifest.json (default: the
    /// export's manifest.sigstore.json), checked with --trusted-root and
    /// the --certificate-identity/--certificate-oidc-issuer policy.
    #[arg(long, value_name = "JSON")]
    pub sigstore_bundle: Option<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ExportInspectArgs {
    #[arg(value_name = "EXPORT")]
    pub export: PathBuf,
    /// age identity file to decrypt the export.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ExportImportArgs {
    #[arg(value_name = "EXPORT")]
    pub export: PathBuf,
    /// For a mirror:delta: the export it builds on, imported first (its
    /// manifest digest must be the one the delta pins).
    #[arg(long, value_name = "EXPORT")]
    pub base: Option<PathBuf>,
    /// `<registry>/<prefix>` (each repository becomes `<prefix>/<repo>`) or
    /// `oci:<dir>` (one OCI layout per repository under <dir>).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Public key that must have signed the export (and its base). Repeatable.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// age identity file to decrypt the export.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: TextOrJson,
}
