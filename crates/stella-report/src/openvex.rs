//! The OpenVEX adapter: turns the OpenVEX documents found for an image
//! (with the signers the engine verified) into a [`VexLookup`], using the
//! `stella-vex` model (parsing, validation, product keys). Nothing here
//! parses OpenVEX itself.
//!
//! - A document signed by a trusted VEX signer that does not parse or
//!   validate is an error: the policy trusts its issuer, so it must be read.
//!   Any other unreadable document is skipped and reported.
//! - Statements inside an in-toto attestation that name no products are
//!   about the attestation's subjects (OpenVEX ATTESTING.md); `stella-vex`
//!   applies them when given the subjects as default products.
//! - A product is matched by its `stella-vex` key: the image digest, or the
//!   package URL with and without its qualifiers. A wildcard or bare name
//!   never equals such a key, so it matches nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use stella_types::Digest;
use stella_vex::{Document, IssuedStatement, ParseOptions, Product, Status, purl};

use crate::gather::VexDocument;
use crate::vex::{VexLookup, VexStatement, VexStatus};

/// Statements from OpenVEX documents, indexed by vulnerability id and alias
/// (lower case).
#[derive(Debug, Default)]
pub struct OpenVexLookup {
    statements: Vec<Entry>,
    by_vulnerability: BTreeMap<String, Vec<usize>>,
}

#[derive(Debug)]
struct Entry {
    issued: IssuedStatement,
    signers: Vec<String>,
    issuer: String,
}

/// Why a VEX document could not be used.
#[derive(Debug, thiserror::Error)]
#[error("VEX document {digest}: {detail}")]
pub struct VexDocumentError {
    pub digest: Digest,
    pub detail: String,
}

impl OpenVexLookup {
    /// Reads `documents`; `trusted` are the policy's VEX signers. Returns
    /// the lookup and the documents skipped (untrusted and unreadable).
    pub fn from_documents(
        documents: &[VexDocument],
        image: &Digest,
        trusted: &[String],
    ) -> Result<(OpenVexLookup, Vec<VexDocumentError>), VexDocumentError> {
        let mut lookup = OpenVexLookup::default();
        let mut skipped = Vec::new();
        for d in documents {
            match read(d, image) {
                Ok(doc) => lookup.add(&doc, &d.signers)?,
                Err(detail) => {
                    let e = VexDocumentError {
                        digest: d.digest.clone(),
                        detail,
                    };
                    if d.signers.iter().any(|s| trusted.contains(s)) {
                        return Err(e);
                    }
                    skipped.push(e);
                }
            }
        }
        Ok((lookup, skipped))
    }

    fn add(&mut self, doc: &Document, signers: &[String]) -> Result<(), VexDocumentError> {
        let issued =
            IssuedStatement::from_document(&doc.author, doc).map_err(|e| VexDocumentError {
                digest: Digest::sha256_of(doc.id.as_bytes()),
                detail: e.to_string(),
            })?;
        for s in issued {
            self.push_issued(s, signers, &doc.author);
        }
        Ok(())
    }

    /// Adds one statement stored elsewhere (a tenant's ingested VEX), with
    /// the policy signer names that verified it and its issuer for display.
    pub fn push_issued(&mut self, s: IssuedStatement, signers: &[String], issuer: &str) {
        let at = self.statements.len();
        let v = &s.statement.vulnerability;
        let mut ids: Vec<String> = std::iter::once(v.name.clone())
            .chain(v.aliases.iter().cloned())
            .chain(v.id.iter().cloned())
            .map(|i| i.trim().to_ascii_lowercase())
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            self.by_vulnerability.entry(id).or_default().push(at);
        }
        self.statements.push(Entry {
            issued: s,
            signers: signers.to_vec(),
            issuer: issuer.to_string(),
        });
    }

    pub fn len(&self) -> usize {
        self.statements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}

/// The document: a bare OpenVEX document, or the predicate of an in-toto
/// statement (statements without products then cover the image).
fn read(d: &VexDocument, image: &Digest) -> Result<Document, String> {
    let value: Value = serde_json::from_slice(&d.bytes).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("_type").is_some() {
        let predicate = value
            .get("predicate")
            .cloned()
            .ok_or("in-toto statement without a predicate")?;
        let options = ParseOptions {
            default_products: vec![Product::named(&image.to_string())],
            ..ParseOptions::default()
        };
        return stella_vex::model::from_value(predicate, &options).map_err(|e| e.to_string());
    }
    stella_vex::parse(&d.bytes).map_err(|e| e.to_string())
}

fn status(s: Status) -> VexStatus {
    match s {
        Status::NotAffected => VexStatus::NotAffected,
        Status::Affected => VexStatus::Affected,
        Status::Fixed => VexStatus::Fixed,
        Status::UnderInvestigation => VexStatus::UnderInvestigation,
    }
}

impl VexLookup for OpenVexLookup {
    /// Built per call (the product key that matched is part of each), so
    /// returned owned.
    fn statements<'a>(
        &'a self,
        product: &Digest,
        purl_text: &str,
        vulns: &[String],
    ) -> Vec<Cow<'a, VexStatement>> {
        let bare = purl_text.split(['?', '#']).next().unwrap_or(purl_text);
        let keys = [
            purl::normalize(&product.to_string()),
            purl::normalize(purl_text),
            purl::normalize(bare),
        ];
        let mut hits: Vec<usize> = vulns
            .iter()
            .filter_map(|v| self.by_vulnerability.get(&v.trim().to_ascii_lowercase()))
            .flatten()
            .copied()
            .collect();
        hits.sort_unstable();
        hits.dedup();
        let mut out = Vec::new();
        for i in hits {
            let Some(e) = self.statements.get(i) else {
                continue;
            };
            let Some(key) = keys.iter().find(|k| e.issued.is_about_product(k)) else {
                continue;
            };
            let Ok(digest) = Digest::parse(&e.issued.digest) else {
                continue;
            };
            let st = &e.issued.statement;
            out.push(Cow::Owned(VexStatement {
                digest,
                issuer: Some(e.issuer.clone()),
                signers: e.signers.clone(),
                status: status(st.status),
                justification: st.justification.clone(),
                vulnerability: st.vulnerability.name.clone(),
                product: key.clone(),
            }));
        }
        out.sort();
        out.dedup();
        out
    }
}
