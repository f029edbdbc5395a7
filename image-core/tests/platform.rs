use image_core::platform::{matches, normalize_arch, select_manifest, Platform};
use oci_spec::image::ImageIndex;

fn p(s: &str) -> Platform {
    s.parse().expect("test platform parses")
}

#[test]
fn normalisation_follows_containerd() {
    let cases = [
        ("aarch64", "", "arm64", "v8"),
        ("arm64", "", "arm64", "v8"),
        ("arm64", "8", "arm64", "v8"),
        ("ARM64", "V8", "arm64", "v8"),
        ("x86_64", "", "amd64", ""),
        ("x86-64", "", "amd64", ""),
        ("amd64", "v1", "amd64", ""),
        ("amd64", "v3", "amd64", "v3"),
        ("armhf", "", "arm", "v7"),
        ("armel", "", "arm", "v6"),
        ("arm", "", "arm", "v7"),
        ("arm", "6", "arm", "v6"),
        ("i386", "", "386", ""),
        ("ppc64le", "", "ppc64le", ""),
        ("s390x", "", "s390x", ""),
    ];
    for (arch, variant, want_arch, want_variant) in cases {
        assert_eq!(
            normalize_arch(arch, variant),
            (want_arch.to_string(), want_variant.to_string()),
            "{arch}/{variant}"
        );
    }
    assert_eq!(
        Platform::new("Linux", "x86_64", None).to_string(),
        "linux/amd64"
    );
    assert_eq!(
        Platform::new("MacOS", "arm64", None).to_string(),
        "darwin/arm64/v8"
    );
}

#[test]
fn parse_and_display() {
    assert_eq!(p("linux/arm64").to_string(), "linux/arm64/v8");
    assert_eq!(p("linux/arm/v6").to_string(), "linux/arm/v6");
    assert_eq!(p("amd64").to_string(), "linux/amd64");
    for bad in ["", "linux/", "/amd64", "a/b/c/d"] {
        let e = bad.parse::<Platform>().unwrap_err();
        assert!(e.to_string().contains("os/arch"), "{bad:?}: {e}");
    }
}

#[test]
fn host_is_normalised_linux() {
    let h = Platform::host();
    assert_eq!(h.os, "linux");
    assert_ne!(h.architecture, "x86_64");
    assert_ne!(h.architecture, "aarch64");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(h.to_string(), "linux/amd64");
    }
}

#[test]
fn matching() {
    assert!(matches(&p("linux/amd64"), &p("linux/x86_64")));
    assert!(matches(&p("linux/arm64/v8"), &p("linux/aarch64")));
    assert!(!matches(&p("linux/amd64"), &p("linux/arm64")));
    assert!(!matches(&p("linux/amd64"), &p("windows/amd64")));
    // An older arm variant runs on a newer one, not the reverse.
    assert!(matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
    assert!(!matches(&p("linux/arm/v6"), &p("linux/arm/v7")));
    // amd64 baseline does not run a v3 image.
    assert!(!matches(&p("linux/amd64"), &p("linux/amd64/v3")));
}

fn index(platforms: &[(&str, &str, Option<&str>)]) -> ImageIndex {
    let manifests: Vec<serde_json::Value> = platforms
        .iter()
        .enumerate()
        .map(|(i, (os, arch, variant))| {
            let mut plat = serde_json::json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                plat["variant"] = serde_json::json!(v);
            }
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{:064x}", i + 1),
                "size": 100 + i,
                "platform": plat,
            })
        })
        .collect();
    let v = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    serde_json::from_value(v).expect("test index decodes")
}

#[test]
fn select_prefers_exact_variant() {
    let idx = index(&[
        ("linux", "arm", Some("v6")),
        ("linux", "arm", None),
        ("linux", "arm", Some("v7")),
        ("linux", "amd64", None),
    ]);
    // arm without variant normalises to v7, so entries 1 and 2 are both exact; first wins.
    let d = select_manifest(&idx, &p("linux/arm/v7")).unwrap();
    assert_eq!(d.size(), 101);
    let d = select_manifest(&idx, &p("linux/arm/v6")).unwrap();
    assert_eq!(d.size(), 100);
    let d = select_manifest(&idx, &p("linux/x86_64")).unwrap();
    assert_eq!(d.size(), 103);
}

#[test]
fn select_accepts_missing_variant_after_exact() {
    let idx = index(&[("linux", "amd64", None), ("linux", "amd64", Some("v3"))]);
    assert_eq!(
        select_manifest(&idx, &p("linux/amd64/v3")).unwrap().size(),
        101
    );
    assert_eq!(
        select_manifest(&idx, &p("linux/amd64/v2")).unwrap().size(),
        100
    );
    assert_eq!(
        select_manifest(&idx, &p("linux/amd64")).unwrap().size(),
        100
    );
}

#[test]
fn no_match_lists_what_the_index_offers() {
    let idx = index(&[
        ("linux", "amd64", None),
        ("linux", "ppc64le", None),
        ("linux", "amd64", None),
    ]);
    let e = select_manifest(&idx, &p("linux/arm64")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no manifest for linux/arm64/v8 in index; it offers linux/amd64, linux/ppc64le"
    );
    let empty = index(&[]);
    let e = select_manifest(&empty, &p("linux/amd64")).unwrap_err();
    assert!(e.to_string().contains("no manifests at all"), "{e}");
}
