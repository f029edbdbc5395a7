//! `lxcri rootfs identify`: a container's image identity (its top chain ID), asked of a real
//! containerd over its gRPC API and checked against the image's manifest and config, as the shim
//! will ask it at Create when ZFS is on. A user would check the same with `ctr snapshots info`
//! (the snapshot's parent) and `lxcri image inspect` (the chain ID of the image they built).

use image_core::builder::{busybox_rootfs, BuiltImage, ImageBuilder, ImageConfigSpec};
use integration::{require_root_or_skip, shim_dir, unique_id, Containerd, ContainerdVersion};
use integration::{stderr, stdout, NAMESPACE};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

integration::per_containerd_version!(
    identifies_containers_of_one_and_three_layer_images,
    says_when_containerd_cannot_tell,
    refuses_a_retagged_or_corrupt_image,
);

fn run(v: ContainerdVersion, scenario: fn(&Containerd)) {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(v);
    scenario(&cd);
}

/// `lxcri rootfs identify` against `cd`: (exit code, JSON on stdout, stderr).
fn identify(cd: &Containerd, id: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = identify_raw(cd, id, extra);
    let json: Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
        panic!(
            "lxcri rootfs identify {id}: stdout is not one JSON object ({e}):\n{}\n--- stderr:\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code().unwrap_or(-1), json, stderr(&out))
}

fn identify_raw(cd: &Containerd, id: &str, extra: &[&str]) -> Output {
    let lxcri = shim_dir().join("lxcri");
    assert!(
        lxcri.is_file(),
        "{} is missing: run scripts/build.sh",
        lxcri.display()
    );
    Command::new(&lxcri)
        .args(["rootfs", "identify", "--address"])
        .arg(cd.socket())
        .args(["--namespace", NAMESPACE])
        .args(extra)
        .arg(id)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", lxcri.display()))
}

/// Builds and imports image `name` with `extra_layers` small layers on top of busybox.
fn import_image(cd: &Containerd, name: &str, extra_layers: usize) -> BuiltImage {
    let tmp = tempfile::Builder::new()
        .prefix("lxcri-identity-")
        .tempdir_in(cd.dir())
        .unwrap();
    let base = tmp.path().join("l0");
    busybox_rootfs(&base).unwrap();
    let mut b = ImageBuilder::new(name).layer_dir(&base);
    for n in 1..=extra_layers {
        let dir = tmp.path().join(format!("l{n}"));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join(format!("etc/layer{n}")), format!("{name} {n}\n")).unwrap();
        b = b.layer_dir(&dir);
    }
    let tar = tmp.path().join("image.tar");
    let built = b
        .config(ImageConfigSpec {
            cmd: vec!["/bin/sh".into()],
            ..ImageConfigSpec::default()
        })
        .write_archive(&tar)
        .unwrap();
    cd.import_archive(&tar, &built.name);
    built
}

/// The parent of container `id`'s snapshot, as `ctr snapshots info` shows it.
fn snapshot_parent(cd: &Containerd, snapshotter: &str, id: &str) -> String {
    let info: Value =
        serde_json::from_str(&cd.ctr_ok(&["snapshots", "--snapshotter", snapshotter, "info", id]))
            .unwrap();
    info["Parent"].as_str().unwrap_or_default().to_string()
}

/// Deletes the containers when dropped, also after a failed assertion.
struct Containers<'a>(&'a Containerd, Vec<String>);

impl Containers<'_> {
    fn create(&mut self, image: &str, id: &str, extra: &[&str]) {
        let mut args = vec!["containers", "create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, id]);
        self.0.ctr_ok(&args);
        self.1.push(id.to_string());
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            self.0.remove_container(id);
        }
    }
}

fn identifies_containers_of_one_and_three_layer_images(cd: &Containerd) {
    let three = import_image(cd, "local/three-layers:1", 2);
    assert_eq!(three.chain_ids.len(), 3);
    let chain = three.chain_ids.last().unwrap();
    assert_ne!(
        chain,
        three.diff_ids.last().unwrap(),
        "three layers: the chain ID is not a diff ID"
    );
    let one = import_image(cd, "local/one-layer:1", 0);

    let mut cs = Containers(cd, Vec::new());
    let (a, b, n) = (unique_id("id-a"), unique_id("id-b"), unique_id("id-n"));
    cs.create(&three.name, &a, &[]);
    cs.create(&one.name, &b, &[]);
    cs.create(&three.name, &n, &["--snapshotter", "native"]);

    for (id, image, snapshotter) in [
        (&a, &three, "overlayfs"),
        (&b, &one, "overlayfs"),
        (&n, &three, "native"),
    ] {
        let (code, j, err) = identify(cd, id, &[]);
        assert_eq!(code, 0, "{id}: {j} {err}");
        assert_eq!(j["result"], "identified", "{j}");
        let want = image.chain_ids.last().unwrap();
        assert_eq!(
            j["chain_id"], *want,
            "{id}: chain ID computed by image-core"
        );
        assert_eq!(
            snapshot_parent(cd, snapshotter, id),
            *want,
            "{id}: ctr snapshots info shows the parent"
        );
        assert_eq!(j["image_name"], image.name);
        assert_eq!(j["manifest_digest"], image.manifest_digest);
        assert_eq!(j["target_digest"], image.manifest_digest);
        assert_eq!(j["config_digest"], image.config_digest);
        assert_eq!(j["layers"], image.diff_ids.len());
        assert_eq!(j["snapshotter"], snapshotter);
        assert_eq!(j["snapshot_key"], id.as_str());
        assert_eq!(
            j["platform"],
            image_core::platform::Platform::host().to_string()
        );
    }

    // What it adds to every Create: one helper process, connect, 6 calls.
    let mut ms: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let out = identify_raw(cd, &a, &[]);
            assert!(out.status.success(), "{}", stderr(&out));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let median = (ms[9] + ms[10]) / 2.0;
    eprintln!(
        "{}: lxcri rootfs identify: median {median:.1} ms of 20 (min {:.1}, max {:.1})",
        cd.version(),
        ms[0],
        ms[19]
    );
    assert!(median < 500.0, "identify takes {median:.1} ms (median)");
}

fn says_when_containerd_cannot_tell(cd: &Containerd) {
    // An id containerd does not know.
    let (code, j, err) = identify(cd, "no-such-container", &[]);
    assert_eq!(code, 3, "{j} {err}");
    assert_eq!(j["result"], "unavailable");
    let msg = j["error"].as_str().unwrap();
    assert!(
        msg.contains("has no container \"no-such-container\" in namespace"),
        "{msg}"
    );

    // A container whose image was removed after it was created.
    let built = import_image(cd, "local/soon-gone:1", 1);
    let mut cs = Containers(cd, Vec::new());
    let id = unique_id("id-gone");
    cs.create(&built.name, &id, &[]);
    cd.ctr_ok(&["images", "rm", &built.name]);
    let (code, j, err) = identify(cd, &id, &[]);
    assert_eq!(code, 3, "{j} {err}");
    assert_eq!(j["result"], "unavailable");
    let msg = j["error"].as_str().unwrap();
    assert!(msg.contains("no longer exists"), "{msg}");
    assert!(msg.contains(&built.name), "{msg}");
    // Its snapshot still stands on the image's chain ID: only the check is impossible.
    assert_eq!(
        snapshot_parent(cd, "overlayfs", &id),
        *built.chain_ids.last().unwrap()
    );

    // A containerd that does not answer: bounded by --timeout, then a fallback.
    let pid = cd.pid() as i32;
    assert!(pid > 0);
    let _cont = Continue(pid);
    assert!(integration::process::signal(pid, libc::SIGSTOP));
    let t = Instant::now();
    let (code, j, err) = identify(cd, &id, &["--timeout", "300"]);
    let took = t.elapsed();
    assert_eq!(code, 3, "{j} {err}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300 ms"),
        "{j}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(_cont);

    // A socket where nothing listens.
    let (code, j, _) = {
        let out = Command::new(shim_dir().join("lxcri"))
            .args(["rootfs", "identify", "-a"])
            .arg(cd.dir().join("nothing.sock"))
            .args(["-n", NAMESPACE, &id])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            (),
        )
    };
    assert_eq!(code, 3);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("there is no socket at"),
        "{j}"
    );
}

/// Sends SIGCONT to a stopped containerd when dropped, also after a failed assertion.
struct Continue(i32);

impl Drop for Continue {
    fn drop(&mut self) {
        integration::process::signal(self.0, libc::SIGCONT);
    }
}

fn refuses_a_retagged_or_corrupt_image(cd: &Containerd) {
    // The name the container was created from now points at another image.
    let first = import_image(cd, "local/first:1", 0);
    let other = import_image(cd, "local/other:1", 2);
    let mut cs = Containers(cd, Vec::new());
    let id = unique_id("id-retag");
    cs.create("local/first:1", &id, &[]);
    cd.ctr_ok(&["images", "tag", "--force", &other.name, "local/first:1"]);
    let (code, j, err) = identify(cd, &id, &[]);
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["result"], "mismatch");
    assert_eq!(j["parent"], *first.chain_ids.last().unwrap());
    assert_eq!(
        j["computed"][0]["chain_id"],
        *other.chain_ids.last().unwrap()
    );
    assert_eq!(j["computed"][0]["manifest_digest"], other.manifest_digest);
    assert!(err.contains("re-create the container"), "{err}");

    // A config blob changed on disk under containerd: the digest check catches it.
    let corrupt = import_image(cd, "local/corrupt:1", 1);
    let id2 = unique_id("id-corrupt");
    cs.create(&corrupt.name, &id2, &[]);
    let blob = content_blob(cd, &corrupt.config_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.iter().position(|b| *b == b'{').unwrap();
    bytes.insert(at + 1, b' ');
    std::fs::write(&blob, &bytes).unwrap();
    let (code, j, err) = identify(cd, &id2, &[]);
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["result"], "invalid");
    let msg = j["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("config {}", corrupt.config_digest)),
        "{msg}"
    );
    // containerd serves the size its metadata records, so the digest is what differs.
    assert!(msg.contains("content has digest"), "{msg}");
}

/// Where containerd keeps blob `digest` (its content store under its root).
fn content_blob(cd: &Containerd, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let p = cd
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256")
        .join(hex);
    assert!(Path::new(&p).is_file(), "{} is missing", p.display());
    p
}
