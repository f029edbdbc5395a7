//! Cost of validation compared with plain deserialization into oci-spec's types, on a
//! 100-layer manifest, a 50-entry index and a ~1 MB config.
//!
//! Criterion measures each; a plain timing loop (median of many runs) then prints one line per
//! document: `ratio validate/deserialize: X.XX`.

use criterion::{black_box, Criterion};
use image_core::media;
use image_core::validate::{validate, Kind};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn hex(i: usize) -> String {
    format!("sha256:{:064x}", i * 7919 + 1)
}

fn manifest() -> Vec<u8> {
    let layers: Vec<Value> = (0..100)
        .map(|i| {
            json!({
                "mediaType": media::OCI_LAYER_TAR_GZIP,
                "size": 1_000_000 + i,
                "digest": hex(i),
                "annotations": {"org.example.layer": format!("layer {i}")},
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "size": 1234, "digest": hex(999)},
        "layers": layers,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .expect("serializes")
}

fn index() -> Vec<u8> {
    let arches = ["amd64", "arm64", "ppc64le", "s390x", "riscv64"];
    let manifests: Vec<Value> = (0..50)
        .map(|i| {
            json!({
                "mediaType": media::OCI_MANIFEST,
                "size": 1000 + i,
                "digest": hex(i),
                "platform": {"architecture": arches[i % arches.len()], "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": format!("v{i}")},
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("serializes")
}

/// Just over 1 MB: 1000 layers, 5000 history entries, 5200 env entries, 2800 labels.
fn config() -> Vec<u8> {
    let diff_ids: Vec<String> = (0..1000).map(hex).collect();
    let history: Vec<Value> = (0..5000)
        .map(|i| {
            let mut h = json!({
                "created": "2024-01-01T00:00:00.123456789Z",
                "created_by": format!("/bin/sh -c #(nop) step {i} of the build that makes it"),
            });
            if i % 5 != 0 {
                h["empty_layer"] = json!(true);
            }
            h
        })
        .collect();
    let env: Vec<String> = (0..5200).map(|i| format!("VAR_{i}=value-{i}")).collect();
    let labels: serde_json::Map<String, Value> = (0..2800)
        .map(|i| {
            (
                format!("org.example.label.{i}"),
                json!(format!("value {i}")),
            )
        })
        .collect();
    serde_json::to_vec(&json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Cmd": ["/bin/sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .expect("serializes")
}

fn deserialize(kind: Kind, bytes: &[u8]) -> bool {
    match kind {
        Kind::Manifest => serde_json::from_slice::<ImageManifest>(bytes).is_ok(),
        Kind::Index => serde_json::from_slice::<ImageIndex>(bytes).is_ok(),
        Kind::Config => serde_json::from_slice::<ImageConfiguration>(bytes).is_ok(),
        _ => false,
    }
}

/// Median duration of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let docs = [
        ("manifest", Kind::Manifest, manifest()),
        ("index", Kind::Index, index()),
        ("config", Kind::Config, config()),
    ];
    for (name, kind, bytes) in &docs {
        assert!(
            validate(*kind, None, bytes).is_ok(),
            "the generated {name} must be valid"
        );
        assert!(
            deserialize(*kind, bytes),
            "the generated {name} must decode"
        );
    }

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (name, kind, bytes) in &docs {
        let mut g = c.benchmark_group(format!("{name} ({} bytes)", bytes.len()));
        g.bench_function("validate", |b| {
            b.iter(|| validate(*kind, None, black_box(bytes)).is_ok())
        });
        g.bench_function("deserialize", |b| {
            b.iter(|| deserialize(*kind, black_box(bytes)))
        });
        g.finish();
    }
    c.final_summary();

    for (name, kind, bytes) in &docs {
        let runs = if bytes.len() > 100_000 { 31 } else { 301 };
        let v = median(runs, || {
            black_box(validate(*kind, None, black_box(bytes)).is_ok());
        });
        let d = median(runs, || {
            black_box(deserialize(*kind, black_box(bytes)));
        });
        println!(
            "{name} ({} bytes): validate {v:?}, deserialize {d:?}, ratio validate/deserialize: {:.2}",
            bytes.len(),
            v.as_secs_f64() / d.as_secs_f64()
        );
    }
}
