//! Pod start latency through the CRI (RunPodSandbox + CreateContainer + StartContainer) with
//! lxcri and runc as two runtime handlers of one containerd, alternating, median of N (env
//! `LXCRI_BENCH_PODS`, default 10). Not a regular test: `scripts/bench.sh` runs it with
//! `-- --ignored --nocapture` and prints its last line. Containerd version: env
//! `LXCRI_BENCH_CONTAINERD` (1.6, 1.7 or 2.1; default 1.7).

use integration::*;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[test]
#[ignore = "a benchmark: scripts/bench.sh runs it"]
fn pod_start_latency() {
    if !require_root_or_skip() {
        return;
    }
    let n_pods: usize = std::env::var("LXCRI_BENCH_PODS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let v = match std::env::var("LXCRI_BENCH_CONTAINERD").as_deref() {
        Ok("1.6") => ContainerdVersion::V1_6,
        Ok("2.1") => ContainerdVersion::V2_1,
        _ => ContainerdVersion::V1_7,
    };
    let node = CriNode::start(v);
    let mut times = [(LXCRI_HANDLER, Vec::new()), (RUNC_HANDLER, Vec::new())];
    // One warm-up pod each (page cache, first shim start), then alternate.
    for i in 0..=n_pods {
        for (handler, samples) in times.iter_mut() {
            let cfg = node.pod_config(&format!("bench-{handler}-{i}"), false);
            let t0 = Instant::now();
            let pod = node.run_pod(&cfg, handler);
            node.run_container(&pod, &cfg, "main", &["sleep", "1000"]);
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if i > 0 {
                samples.push(ms);
            }
            node.remove_pod_fully(&pod);
        }
    }
    let l = median(times[0].1.clone());
    let r = median(times[1].1.clone());
    println!(
        "pod start ({v}, median of {n_pods}): lxcri {l:.1} ms, runc {r:.1} ms, ratio lxcri/runc {:.2}",
        l / r
    );
}
