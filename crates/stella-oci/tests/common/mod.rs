//! Fixtures shared by the layout test binaries: a tiny image and an
//! artifact spec.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use stella_oci::artifact::{ArtifactSpec, LayerSource};
use stella_oci::layout::OciLayout;
use stella_oci::store::*;
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, ImageManifest};

/// Pushes a small image (config + one layer) into `l`, tagged `tag`.
pub async fn image(l: &OciLayout, tag: Option<&str>, seed: &str) -> Descriptor {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, config.as_bytes());
    l.push_blob(&cd, BlobSource::Bytes(config.as_bytes()), &NoProgress)
        .await
        .unwrap();
    let layer = format!("layer {seed}").repeat(1000);
    let ld = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, layer.as_bytes());
    l.push_blob(&ld, BlobSource::Bytes(layer.as_bytes()), &NoProgress)
        .await
        .unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: None,
        config: cd,
        layers: vec![ld],
        subject: None,
        annotations: BTreeMap::new(),
    };
    l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), tag)
        .await
        .unwrap()
}

/// An artifact with one JSON layer titled `title`.
pub fn spec(at: &str, title: &str, body: &str) -> ArtifactSpec {
    ArtifactSpec {
        artifact_type: at.into(),
        layers: vec![LayerSource::Bytes {
            bytes: body.as_bytes().to_vec(),
            media_type: "application/json".into(),
            title: Some(title.into()),
        }],
        annotations: BTreeMap::from([(
            annotations::CREATED.to_string(),
            "2024-05-06T07:08:09Z".to_string(),
        )]),
    }
}
