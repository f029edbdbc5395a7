//! Chain IDs: the identity of a stack of layers, computed from the layers' diff IDs.
//!
//! `ChainID(L0) = DiffID(L0)` and `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`,
//! written `sha256:<hex>` (OCI image-spec, config.md, "Layer ChainID"). containerd names the
//! snapshot of an unpacked image by the chain ID of its top layer.

use sha2::{Digest, Sha256};

/// The chain ID of every prefix of `diff_ids`: element `n` is `ChainID(Ln)`.
///
/// The diff IDs are used as they are (no validation): validate the config first.
pub fn chain_ids(diff_ids: &[impl AsRef<str>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.as_ref().to_string(),
            Some(parent) => chain_step(parent, diff_id.as_ref()),
        };
        out.push(next);
    }
    out
}

/// The chain ID of the whole stack (its top layer), `None` for no layers.
pub fn chain_id(diff_ids: &[impl AsRef<str>]) -> Option<String> {
    chain_ids(diff_ids).pop()
}

/// One step: `sha256:hex(sha256(parent + " " + diff_id))`.
pub fn chain_step(parent_chain_id: &str, diff_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent_chain_id.as_bytes());
    h.update(b" ");
    h.update(diff_id.as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
    const B: &str = "sha256:f5b7ce95afea5d39690afc4ee93e60a6d6b3a7a2f4d7c8b7b8a2d2c0e1f6a9b3";

    #[test]
    fn empty_has_no_chain_id() {
        let none: [&str; 0] = [];
        assert!(chain_ids(&none).is_empty());
        assert_eq!(chain_id(&none), None);
    }

    #[test]
    fn first_layer_chain_id_is_its_diff_id() {
        assert_eq!(chain_ids(&[A]), vec![A.to_string()]);
        assert_eq!(chain_id(&[A]).as_deref(), Some(A));
    }

    #[test]
    fn known_vector() {
        // Computed by hand:
        //   printf 'sha256:a3ed…46d4 sha256:f5b7…a9b3' | sha256sum   (A and B in full)
        //   -> 090830213cc5097d251d5a7a52b0fbf9fac256f9c300d7e7315b7f20e5b571bd
        //   printf 'sha256:0908…71bd sha256:5f70…c6ef' | sha256sum   (that result, then C)
        //   -> fb2e994a551ddb3efc4d9418409d3d47b5a27b1292222c376f1c88fb00c18b53
        let ids = chain_ids(&[A, B, C]);
        assert_eq!(ids, vec![A.to_string(), AB.to_string(), ABC.to_string()]);
        assert_eq!(chain_id(&[A, B]).as_deref(), Some(AB));
        assert_eq!(chain_id(&[A, B, C]).as_deref(), Some(ABC));
        // Owned strings work as well as &str.
        let owned: Vec<String> = vec![A.into(), B.into()];
        assert_eq!(chain_id(&owned).as_deref(), Some(AB));
    }

    #[test]
    fn order_matters() {
        assert_ne!(chain_id(&[A, B]), chain_id(&[B, A]));
    }

    const C: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    const AB: &str = "sha256:090830213cc5097d251d5a7a52b0fbf9fac256f9c300d7e7315b7f20e5b571bd";
    const ABC: &str = "sha256:fb2e994a551ddb3efc4d9418409d3d47b5a27b1292222c376f1c88fb00c18b53";
}
