//! Feeds arbitrary bytes to `image_core::validate::validate` for every kind of document, with
//! and without an expected media type. Validation must never panic, and an error always
//! carries at least one problem.
#![no_main]

use image_core::media;
use image_core::validate::{validate, Kind};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 5] = [
    Kind::Descriptor,
    Kind::Manifest,
    Kind::Index,
    Kind::Config,
    Kind::Layout,
];

fuzz_target!(|data: &[u8]| {
    for kind in KINDS {
        for expected in [None, Some(media::OCI_MANIFEST), Some(media::DOCKER_MANIFEST_LIST)] {
            if let Err(problems) = validate(kind, expected, data) {
                assert!(!problems.is_empty(), "{kind:?}: an error without problems");
            }
        }
    }
});
