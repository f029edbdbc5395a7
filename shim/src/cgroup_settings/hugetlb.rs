//! `linux.resources.hugepageLimits`: `hugetlb.<size>.limit_in_bytes` (v1), `hugetlb.<size>.max`
//! (v2).

use oci_spec::runtime::LinuxHugepageLimit;

use super::{v2_limit, Settings};
use crate::lxcconf::TranslateError;

pub(super) fn convert(
    s: &mut Settings,
    limits: &[LinuxHugepageLimit],
) -> Result<(), TranslateError> {
    for (i, h) in limits.iter().enumerate() {
        let size = h.page_size();
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TranslateError::invalid(
                format!("linux.resources.hugepageLimits[{i}].pageSize"),
                format!("{size:?} is not a page size like 2MB"),
                "give the size as the hugetlb controller names it (2MB, 1GB)",
            ));
        }
        if s.v1() {
            s.set(format!("hugetlb.{size}.limit_in_bytes"), h.limit());
        } else {
            s.set(format!("hugetlb.{size}.max"), v2_limit(h.limit()));
        }
    }
    Ok(())
}
