//! `stella policy validate`: parse a policy and print its diagnostics.
//!
//! Exit 0 when the policy has no errors (warnings allowed), 1 when it has
//! errors, 2 when the file cannot be read.

use std::io::Write;

use anyhow::Context;
use stella_types::predicate_types::resolve_alias;
use stella_verify::policy::{Policy, PolicyDiagnostics};

use crate::cli::{PolicyCommand, PolicyValidateArgs, TextOrJson};
use crate::exit::Outcome;

pub fn run(command: PolicyCommand) -> anyhow::Result<Outcome> {
    match command {
        PolicyCommand::Validate(a) => validate(a),
    }
}

/// Reads and validates a policy file (shared with `verify image`).
pub fn load(path: &std::path::Path) -> anyhow::Result<(Option<Policy>, PolicyDiagnostics)> {
    let bytes = crate::cmd::read_capped(path, stella_types::limits::MAX_JSON_DOCUMENT_BYTES)
        .with_context(|| format!("cannot read policy {}", path.display()))?;
    Ok(Policy::parse(&bytes, &|a| {
        resolve_alias(a).map(str::to_string)
    }))
}

/// [`load`], refusing an invalid policy with its first errors (path:
/// message) and a pointer to `stella policy validate`.
pub fn load_valid(path: &std::path::Path) -> anyhow::Result<Policy> {
    let (policy, diagnostics) = load(path)?;
    let Some(policy) = policy else {
        let first: Vec<String> = diagnostics
            .issues
            .iter()
            .filter(|i| i.severity == stella_verify::Severity::Error)
            .take(3)
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        anyhow::bail!(
            "policy {} is invalid ({} error(s)): {} (see `stella policy validate`)",
            path.display(),
            diagnostics.error_count,
            first.join("; ")
        );
    };
    Ok(policy)
}

fn validate(args: PolicyValidateArgs) -> anyhow::Result<Outcome> {
    let (_, diagnostics) = load(&args.policy)?;
    let mut out = std::io::stdout().lock();
    match args.output {
        TextOrJson::Json => {
            let json = stella_types::canonical_json::to_canonical_vec(&diagnostics)?;
            out.write_all(&json)?;
            out.write_all(b"\n")?;
        }
        TextOrJson::Text => {
            for i in &diagnostics.issues {
                let sev = match i.severity {
                    stella_verify::Severity::Error => "error",
                    stella_verify::Severity::Warning => "warning",
                };
                writeln!(out, "{sev}: {}: {} [{}]", i.path, i.message, i.code)?;
            }
            writeln!(
                out,
                "{}: {} requirement(s), {} error(s), {} warning(s)",
                if diagnostics.success {
                    "valid"
                } else {
                    "invalid"
                },
                diagnostics.requirement_count,
                diagnostics.error_count,
                diagnostics.warning_count
            )?;
        }
    }
    Ok(if diagnostics.success {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}
