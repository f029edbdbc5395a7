//! Platforms: normalisation the way containerd does it, matching, and choosing the manifest of
//! an index for a platform.
//!
//! Normalised form: lowercase os (`macos` -> `darwin`); architecture `amd64` for `x86_64`,
//! `x86-64`; `arm64` for `aarch64` with variant `v8` when none is given; `arm` with variant `v7`
//! when none is given (`armhf` = arm/v7, `armel` = arm/v6); `386` for `i386`, `i686`, `x86`;
//! variants written `vN` (`8` -> `v8`); amd64's baseline variant `v1` is dropped.

use oci_spec::image::{Descriptor, ImageIndex};
use std::fmt;
use std::str::FromStr;

/// An os/architecture/variant triple, normalised on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// `None` when the architecture has no variant (amd64 baseline, ppc64le, ...).
    pub variant: Option<String>,
}

impl Platform {
    /// A normalised platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let os = normalize_os(os);
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or(""));
        Platform {
            os,
            architecture,
            variant: if variant.is_empty() {
                None
            } else {
                Some(variant)
            },
        }
    }

    /// The platform of this machine: `linux` (the compile-time os) and this build's architecture.
    pub fn host() -> Self {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// From oci-spec's platform (a descriptor's or derived from a config).
    pub fn from_oci(p: &oci_spec::image::Platform) -> Self {
        Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A platform string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {input:?} is not os/arch[/variant] (for example linux/amd64 or linux/arm64/v8)")]
pub struct ParsePlatformError {
    pub input: String,
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    /// Parses `os/arch[/variant]`, or a bare `arch` (os `linux`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePlatformError {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        match parts.as_slice() {
            [arch] => Ok(Platform::new("linux", arch, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(err()),
        }
    }
}

/// Lowercases the os and maps aliases (`macos` -> `darwin`).
pub fn normalize_os(os: &str) -> String {
    let os = os.trim().to_ascii_lowercase();
    match os.as_str() {
        "macos" => "darwin".to_string(),
        _ => os,
    }
}

/// Normalises an architecture and its variant (empty = none).
pub fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.trim().to_ascii_lowercase();
    let variant = variant.trim().to_ascii_lowercase();
    // Variants are written vN; containerd accepts bare numbers.
    let v = if !variant.is_empty() && variant.chars().all(|c| c.is_ascii_digit() || c == '.') {
        format!("v{variant}")
    } else {
        variant
    };
    match arch.as_str() {
        "i386" | "i486" | "i586" | "i686" | "x86" | "386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if v == "v1" { String::new() } else { v };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match v.as_str() {
                "" | "v8" | "v8.0" => "v8".to_string(),
                _ => v,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" | "armv7l" | "armv7" => {
            let v = if v.is_empty() { "v7".to_string() } else { v };
            ("arm".into(), v)
        }
        "armv6l" | "armv6" => ("arm".into(), "v6".into()),
        "armv5l" | "armv5" | "armv5tel" => ("arm".into(), "v5".into()),
        "ppc64le" | "powerpc64le" => ("ppc64le".into(), v),
        "riscv64" => ("riscv64".into(), v),
        "s390x" => ("s390x".into(), v),
        _ => (arch, v),
    }
}

/// Does the `offered` platform (from an index) run where `wanted` is asked for?
///
/// Both are normalised. Same os and architecture; the variant must be equal, or missing on the
/// offered side (an image that does not say, as containerd accepts for arm64 and amd64). An
/// older arm variant runs on a newer one (arm/v6 on arm/v7), as with containerd.
pub fn matches(wanted: &Platform, offered: &Platform) -> bool {
    match_rank(wanted, offered).is_some()
}

/// 0 = exact, 1 = offered variant missing, 2+ = an older compatible variant; `None` = no match.
fn match_rank(wanted: &Platform, offered: &Platform) -> Option<u32> {
    if wanted.os != offered.os || wanted.architecture != offered.architecture {
        return None;
    }
    match (&wanted.variant, &offered.variant) {
        (w, o) if w == o => Some(0),
        (_, None) => Some(1),
        (Some(w), Some(o)) => {
            let w = variant_number(w)?;
            let o = variant_number(o)?;
            if (wanted.architecture == "arm" || wanted.architecture == "amd64") && o < w {
                Some(2 + (w - o))
            } else {
                None
            }
        }
        // amd64 with no variant is the v1 baseline: a v2+ image does not run on it.
        (None, Some(_)) => None,
    }
}

fn variant_number(v: &str) -> Option<u32> {
    v.strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// No manifest of an index matches the wanted platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no manifest for {wanted} in index; it offers {}", offers_text(.offered))]
pub struct NoMatch {
    pub wanted: Platform,
    /// What the index offers, in index order; `None` for a descriptor without a platform.
    pub offered: Vec<Option<Platform>>,
}

fn offers_text(offered: &[Option<Platform>]) -> String {
    if offered.is_empty() {
        return "no manifests at all".to_string();
    }
    let mut seen: Vec<String> = Vec::new();
    for o in offered {
        let s = match o {
            Some(p) => p.to_string(),
            None => "(a manifest without platform)".to_string(),
        };
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join(", ")
}

/// The platform a descriptor declares, normalised.
pub fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(Platform::from_oci)
}

/// Chooses the manifest of `index` for `wanted`: an exact match first, then one whose variant
/// is missing, then an older compatible variant; in index order among equals. Descriptors
/// without a platform never match (their platform is only known from their config).
pub fn select_manifest<'a>(
    index: &'a ImageIndex,
    wanted: &Platform,
) -> Result<&'a Descriptor, NoMatch> {
    let mut best: Option<(u32, &Descriptor)> = None;
    let mut offered = Vec::new();
    for d in index.manifests() {
        let p = descriptor_platform(d);
        if let Some(p) = &p {
            if let Some(rank) = match_rank(wanted, p) {
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, d));
                }
            }
        }
        offered.push(p);
    }
    best.map(|(_, d)| d).ok_or_else(|| NoMatch {
        wanted: wanted.clone(),
        offered,
    })
}
