//! Merging documents from several issuers into one OpenVEX document.
//!
//! The result holds one statement per (product, vulnerability) pair: the
//! statement that decided the [`consensus`](crate::consensus) for the pair
//! (of the issuers at the deciding weight that report the consensus status,
//! the latest), narrowed to that one product, its timestamp written out.
//! When trusted issuers disagree, the statement's `status_notes` say so.
//! Statements are sorted by product then vulnerability, so the output bytes
//! do not depend on the order of the inputs; there are no duplicates.
//!
//! Not here: reading files or deciding who issued a document (the caller
//! passes the issuer with each document).

use crate::consensus::{IssuedStatement, TrustConfig, consensus_all};
use crate::error::VexError;
use crate::model::{CONTEXT_V020, Document, Statement};
use crate::purl;

/// Document-level fields of the merged document.
#[derive(Clone, Debug)]
pub struct MergeOptions {
    pub author: String,
    pub tooling: String,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            author: "Stella VEX merge".into(),
            tooling: "stella vex merge".into(),
        }
    }
}

/// Merges `(issuer, document)` pairs under `trust`. `None` when no trusted
/// issuer says anything (a document needs at least one statement).
pub fn merge(
    documents: &[(String, Document)],
    trust: &TrustConfig,
    options: &MergeOptions,
) -> Result<Option<Document>, VexError> {
    let mut issued = Vec::new();
    for (issuer, doc) in documents {
        issued.extend(IssuedStatement::from_document(issuer, doc)?);
    }
    let mut statements: Vec<Statement> = Vec::new();
    for c in consensus_all(&issued, trust) {
        let winner = c
            .contributions
            .iter()
            .filter(|k| k.decisive && k.status == c.status)
            .max_by(|a, b| {
                (a.timestamp, a.document_version, &a.statement_digest).cmp(&(
                    b.timestamp,
                    b.document_version,
                    &b.statement_digest,
                ))
            });
        let Some(winner) = winner else { continue };
        let Some(source) = issued
            .iter()
            .find(|s| s.issuer == winner.issuer && s.digest == winner.statement_digest)
        else {
            continue;
        };
        let mut statement = source.statement.clone();
        statement
            .products
            .retain(|p| purl::primary_key(&p.component) == c.product);
        statement.products.truncate(1);
        if c.conflict {
            let note = format!("conflict: {}", c.rationale);
            statement.status_notes = Some(match statement.status_notes.take() {
                Some(n) if !n.is_empty() => format!("{n}; {note}"),
                _ => note,
            });
        }
        statements.push(statement);
    }
    let Some(timestamp) = statements.iter().map(|s| s.timestamp).max() else {
        return Ok(None);
    };
    let body = stella_types::canonical_json::to_canonical_vec(&statements)
        .map_err(|e| VexError::Encode(e.to_string()))?;
    let id = format!(
        "urn:stella:vex:merged:{}",
        stella_types::Digest::sha256_of(&body)
    );
    Ok(Some(Document {
        context: CONTEXT_V020.to_string(),
        id,
        author: options.author.clone(),
        role: None,
        timestamp,
        last_updated: None,
        version: 1,
        tooling: Some(options.tooling.clone()),
        statements,
    }))
}
