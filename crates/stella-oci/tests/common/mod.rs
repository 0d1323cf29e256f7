//! Fixtures shared by the layout test binaries: a tiny image and an
//! artifact spec.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stella_oci::artifact::{ArtifactSpec, LayerSource};
use stella_oci::layout::OciLayout;
use stella_types::Descriptor;
use stella_types::media_types::annotations;

/// Pushes a small image (config + one layer) into `l`, tagged `tag`.
pub async fn image(l: &OciLayout, tag: Option<&str>, seed: &str) -> Descriptor {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer {seed}").repeat(1000);
    stella_testkit::fixtures::push_image(l, config.as_bytes(), layer.as_bytes(), tag).await
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
