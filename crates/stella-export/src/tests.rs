//! Unit tests of the format rules, parts and the layout index.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;

use stella_types::Digest;

use crate::error::codes;
use crate::format::*;
use crate::parts::{PartWriter, check_parts, parts_list_path, read_parts_list};

fn d(s: &str) -> Digest {
    Digest::sha256_of(s.as_bytes())
}

fn state(repo: &str, tags: &[(&str, &str)], referrers: &[(&str, &str)]) -> RepositoryState {
    let mut content = Vec::new();
    for (_, m) in tags {
        content.push(ContentItem {
            digest: d(m),
            size: 10,
            kind: ContentKind::Manifest,
            media_type: Some(stella_types::media_types::OCI_MANIFEST.into()),
        });
    }
    let referrers = referrers
        .iter()
        .map(|(s, r)| ReferrerEdge {
            subject: d(s),
            referrer: d(r),
            media_type: stella_types::media_types::OCI_MANIFEST.into(),
            size: 5,
            artifact_type: Some("application/x".into()),
        })
        .collect();
    content.sort();
    content.dedup();
    RepositoryState {
        repository: repo.into(),
        tags: tags
            .iter()
            .map(|(t, m)| (t.to_string(), d(m)))
            .collect::<BTreeMap<_, _>>(),
        images: Vec::new(),
        referrers,
        content,
    }
}

fn manifest(entries: Vec<Entry>) -> ExportManifest {
    let images = vec![state("rel/app", &[("v1", "m1")], &[])];
    let selection = Selection::default();
    ExportManifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        format_version: FORMAT_VERSION,
        profile: Profile::MirrorFull,
        created: "1970-01-01T00:00:00Z".into(),
        tool: Tool::default(),
        inputs_hash: inputs_hash(Profile::MirrorFull, &selection, None, &images).unwrap(),
        selection,
        base: None,
        images,
        removed: Vec::new(),
        entries,
    }
}

fn entry(path: &str, sha: &str) -> Entry {
    Entry {
        path: path.into(),
        size: 1,
        sha256: sha.into(),
        role: roles::BLOB.into(),
    }
}

#[test]
fn manifest_round_trips_canonically_and_rejects_what_the_spec_forbids() {
    let hex = d("x").hex().to_string();
    let m = manifest(vec![entry(&format!("blobs/sha256/{hex}"), &hex)]);
    let bytes = m.to_canonical_bytes().unwrap();
    assert_eq!(ExportManifest::parse(&bytes).unwrap(), m);
    // Unknown field.
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["extra"] = serde_json::json!(1);
    let e = ExportManifest::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::BAD_MANIFEST);
    // Another version.
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["formatVersion"] = serde_json::json!(2);
    let e = ExportManifest::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::UNSUPPORTED_VERSION);
    // A blob named after another digest, a path outside the layout, unsorted entries.
    let other = d("y").hex().to_string();
    for bad in [
        vec![entry(&format!("blobs/sha256/{hex}"), &other)],
        vec![entry("../etc/passwd", &hex)],
        vec![entry("oci-layout", &hex), entry("index.json", &hex)],
    ] {
        let b = manifest(bad).to_canonical_bytes().unwrap();
        assert_eq!(
            ExportManifest::parse(&b).unwrap_err().code(),
            codes::BAD_MANIFEST
        );
    }
    // A delta must name its base.
    let mut delta = manifest(Vec::new());
    delta.profile = Profile::MirrorDelta;
    let b = delta.to_canonical_bytes().unwrap();
    assert_eq!(
        ExportManifest::parse(&b).unwrap_err().code(),
        codes::BAD_MANIFEST
    );
}

#[test]
fn removed_since_lists_lost_tags_and_referrers_only() {
    let base = vec![state(
        "a",
        &[("v1", "m1"), ("old", "m0")],
        &[("m1", "r1"), ("m1", "r2")],
    )];
    let now = vec![state(
        "a",
        &[("v1", "m1"), ("new", "m2")],
        &[("m1", "r1"), ("m1", "r3")],
    )];
    let removed = removed_since(&base, &now);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].tags, vec!["old".to_string()]);
    assert_eq!(removed[0].referrers.len(), 1);
    assert_eq!(removed[0].referrers[0].referrer, d("r2"));
    assert!(removed_since(&now, &now).is_empty());
}

#[test]
fn layout_index_names_tags_by_repository_and_lists_referrers() {
    let states = vec![
        state("rel/b", &[("v1", "m1")], &[]),
        state("rel/a", &[("v2", "m2"), ("v1", "m1")], &[("m1", "r1")]),
    ];
    let bytes = crate::write::layout_index(&states).unwrap();
    let idx: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<String> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(names, vec!["", "rel/a:v1", "rel/a:v2", "rel/b:v1"]);
    let referrer = &idx["manifests"][0];
    assert_eq!(referrer["digest"], d("r1").to_string());
    assert_eq!(
        referrer["annotations"]["dev.stella.referrer.subject"],
        d("m1").to_string()
    );
    // Canonical and stable.
    assert_eq!(crate::write::layout_index(&states).unwrap(), bytes);
}

#[test]
fn parts_split_reassemble_and_name_a_bad_part() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("x.tar");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = PartWriter::new(&archive, 4096).unwrap();
    for chunk in data.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    let (list, written) = w.finish().unwrap();
    assert_eq!(list.parts.len(), 3);
    assert_eq!(written.len(), 4);
    assert_eq!(list.size, 10_000);
    assert_eq!(list.sha256, Digest::sha256_of(&data).hex());
    let list_path = parts_list_path(&archive);
    let read = read_parts_list(&list_path).unwrap();
    let paths = check_parts(&list_path, &read).unwrap();
    let mut joined = Vec::new();
    for p in &paths {
        joined.extend(std::fs::read(p).unwrap());
    }
    assert_eq!(joined, data);
    // One byte changed in part 2.
    let p2 = tmp.path().join("x.tar.002");
    let mut b = std::fs::read(&p2).unwrap();
    b[5] ^= 1;
    std::fs::write(&p2, &b).unwrap();
    let e = check_parts(&list_path, &read).unwrap_err();
    assert!(e.is_verification_failure());
    assert!(e.to_string().contains("part 2 of 3 (x.tar.002)"), "{e}");
    // Part 3 missing: unusable input naming it.
    std::fs::remove_file(tmp.path().join("x.tar.003")).unwrap();
    let e = check_parts(&list_path, &read).unwrap_err();
    assert_eq!(e.code(), codes::MISSING_PART);
    assert!(
        e.to_string().contains("part 3 of 3 (x.tar.003) is missing"),
        "{e}"
    );
}

#[test]
fn a_parts_list_cannot_name_files_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.tar.parts.json");
    let list = serde_json::json!({"mediaType": PARTS_MEDIA_TYPE, "name": "x.tar", "size": 1,
        "sha256": d("a").hex(), "parts": [{"name": "../../etc/passwd", "size": 1, "sha256": d("a").hex()}]});
    std::fs::write(&p, serde_json::to_vec(&list).unwrap()).unwrap();
    assert_eq!(
        read_parts_list(&p).unwrap_err().code(),
        codes::NOT_AN_EXPORT
    );
}
