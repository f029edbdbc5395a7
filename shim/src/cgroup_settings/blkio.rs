//! `linux.resources.blockIO`. v1: `blkio.weight`, `blkio.leaf_weight`, `blkio.weight_device`,
//! `blkio.leaf_weight_device`, `blkio.throttle.{read,write}_{bps,iops}_device`. v2: `io.weight`
//! (default and per device), `io.max` (`rbps`, `wbps`, `riops`, `wiops` per device).

use oci_spec::runtime::LinuxBlockIo;

use super::Settings;
use crate::lxcconf::TranslateError;

pub(super) fn convert(w: &mut Settings, b: &LinuxBlockIo) -> Result<(), TranslateError> {
    let f = "linux.resources.blockIO";
    if let Some(weight) = b.weight() {
        if w.v1() {
            w.set("blkio.weight", weight);
        } else {
            w.set("io.weight", blkio_to_io_weight(weight));
        }
    }
    if let Some(lw) = b.leaf_weight() {
        if !w.v1() {
            return Err(w.only_on(&format!("{f}.leafWeight"), "v1"));
        }
        w.set("blkio.leaf_weight", lw);
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(weight) = d.weight() {
            if w.v1() {
                w.set(
                    "blkio.weight_device",
                    format!("{}:{} {weight}", d.major(), d.minor()),
                );
            } else {
                w.set(
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(weight)),
                );
            }
        }
        if d.leaf_weight().is_some() {
            if !w.v1() {
                return Err(w.only_on(&format!("{f}.weightDevice[{i}].leafWeight"), "v1"));
            }
            if let Some(lw) = d.leaf_weight() {
                w.set(
                    "blkio.leaf_weight_device",
                    format!("{}:{} {lw}", d.major(), d.minor()),
                );
            }
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (list, v1_file, v2_key) in throttles {
        for d in list.iter().flatten() {
            if w.v1() {
                w.set(v1_file, format!("{}:{} {}", d.major(), d.minor(), d.rate()));
            } else {
                w.set(
                    "io.max",
                    format!("{}:{} {v2_key}={}", d.major(), d.minor(), d.rate()),
                );
            }
        }
    }
    Ok(())
}

/// runc's conversion of blkio.weight [10, 1000] onto io.weight [1, 10000].
fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}
