//! What a registry manifest holds, decided from its media types alone (pure), and which of
//! its layers a backend keeps.
//!
//! ```text
//!  config.mediaType                                   layers            it is
//!  application/vnd.oci.image.config.v1+json           any               a container image
//!  application/vnd.docker.container.image.v1+json     any               a container image
//!  application/vnd.wasm.config.v0+json                [application/wasm] a WASM artifact
//!  anything else                                       -                 neither: refused
//! ```
//!
//! The WASM row is the CNCF wasm OCI artifact layout
//! (<https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/>, as `wkg oci push`
//! writes it): a config of media type `application/vnd.wasm.config.v0+json` and the component
//! or module as one `application/wasm` layer. A WASM artifact with any other layers is
//! refused rather than guessed at.

use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_DOCKER_CONFIG_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};

use crate::exec::ExecError;

/// The config media type of a WASM artifact (CNCF wasm OCI artifact layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the one layer of a WASM artifact: the `.wasm` file itself.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// What the caller runs, so what a pull must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A container image (the OCI backend).
    Image,
    /// A WASM artifact (the WASI backend).
    Wasm,
}

/// What a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    Image,
    Wasm,
    /// Another kind of OCI artifact; its config media type.
    Other(String),
}

pub(crate) fn classify(manifest: &OciImageManifest) -> Content {
    match manifest.config.media_type.as_str() {
        IMAGE_CONFIG_MEDIA_TYPE | IMAGE_DOCKER_CONFIG_MEDIA_TYPE => Content::Image,
        WASM_CONFIG_MEDIA_TYPE => Content::Wasm,
        other => Content::Other(other.to_string()),
    }
}

/// The layers of `manifest` (pulled as `reference`) to fetch for `want`, or why it cannot
/// serve it: [`ExecError::InvalidTask`] naming what it is and what to do.
pub(crate) fn layers_for<'m>(
    reference: &str,
    manifest: &'m OciImageManifest,
    want: Want,
) -> Result<&'m [OciDescriptor], ExecError> {
    let refuse = |why: String| Err(ExecError::InvalidTask(format!("'{reference}' {why}")));
    match (classify(manifest), want) {
        (Content::Image, Want::Image) => Ok(&manifest.layers),
        (Content::Wasm, Want::Wasm) => match manifest.layers.as_slice() {
            [one] if one.media_type == WASM_LAYER_MEDIA_TYPE => Ok(&manifest.layers),
            layers => refuse(format!(
                "is a wasm artifact with layers [{}]; a runnable one has exactly one \
                 {WASM_LAYER_MEDIA_TYPE} layer",
                layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        (Content::Image, Want::Wasm) => {
            refuse("is a container image, not a wasm artifact: use --runtime oci".into())
        }
        (Content::Wasm, Want::Image) => {
            refuse("is a wasm artifact, not a container image: use --runtime wasm".into())
        }
        (Content::Other(media_type), _) => refuse(format!(
            "is neither a container image nor a wasm artifact (its config media type is \
             {media_type})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str) -> OciDescriptor {
        OciDescriptor {
            media_type: media_type.into(),
            ..Default::default()
        }
    }

    fn manifest(config: &str, layers: &[&str]) -> OciImageManifest {
        OciImageManifest {
            config: descriptor(config),
            layers: layers.iter().map(|l| descriptor(l)).collect(),
            ..Default::default()
        }
    }

    fn refusal(m: &OciImageManifest, want: Want) -> String {
        layers_for("r:1", m, want).unwrap_err().to_string()
    }

    const TAR_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    #[test]
    fn images_and_wasm_artifacts_are_told_apart_by_config_media_type() {
        let image = manifest(IMAGE_CONFIG_MEDIA_TYPE, &[TAR_GZ, TAR_GZ]);
        let docker = manifest(IMAGE_DOCKER_CONFIG_MEDIA_TYPE, &[TAR_GZ]);
        let wasm = manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(classify(&image), Content::Image);
        assert_eq!(classify(&docker), Content::Image);
        assert_eq!(classify(&wasm), Content::Wasm);
        assert_eq!(
            classify(&manifest("application/vnd.cncf.helm.config.v1+json", &[])),
            Content::Other("application/vnd.cncf.helm.config.v1+json".into())
        );
        assert_eq!(layers_for("r", &image, Want::Image).unwrap().len(), 2);
        assert_eq!(layers_for("r", &docker, Want::Image).unwrap().len(), 1);
        let layers = layers_for("r", &wasm, Want::Wasm).unwrap();
        assert_eq!(layers[0].media_type, WASM_LAYER_MEDIA_TYPE);
    }

    #[test]
    fn the_wrong_kind_is_refused_saying_which_runtime_fits() {
        let image = manifest(IMAGE_CONFIG_MEDIA_TYPE, &[TAR_GZ]);
        let wasm = manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(
            refusal(&image, Want::Wasm),
            "invalid task: 'r:1' is a container image, not a wasm artifact: use --runtime oci"
        );
        assert_eq!(
            refusal(&wasm, Want::Image),
            "invalid task: 'r:1' is a wasm artifact, not a container image: use --runtime wasm"
        );
        let helm = manifest("application/vnd.cncf.helm.config.v1+json", &[TAR_GZ]);
        for want in [Want::Image, Want::Wasm] {
            assert!(
                refusal(&helm, want).ends_with(
                    "is neither a container image nor a wasm artifact (its config media type \
                     is application/vnd.cncf.helm.config.v1+json)"
                ),
                "{want:?}"
            );
        }
    }

    #[test]
    fn a_wasm_artifact_needs_exactly_one_wasm_layer() {
        for layers in [
            &[][..],
            &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE][..],
            &[TAR_GZ][..],
        ] {
            let m = manifest(WASM_CONFIG_MEDIA_TYPE, layers);
            let e = refusal(&m, Want::Wasm);
            assert!(
                e.contains("a runnable one has exactly one application/wasm layer"),
                "{e}"
            );
        }
    }
}
