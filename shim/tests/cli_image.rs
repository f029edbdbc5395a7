//! `lxcri image ...` as a user runs it: the built binary on files in tempdirs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LXCRI: &str = env!("CARGO_BIN_EXE_lxcri");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn lxcri(args: &[&str]) -> Output {
    Command::new(LXCRI)
        .args(args)
        .output()
        .expect("run the lxcri binary")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("lxcri exits, is not killed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn manifest(layer_digest: &str) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", hex('a')),
            "size": 10,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": 20,
        }],
    })
}

fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

/// Two small layer directories and an image built from them (layout or archive).
fn build(dir: &Path, out: &str) -> (PathBuf, Output) {
    let l1 = dir.join("l1");
    let l2 = dir.join("l2");
    fs::create_dir_all(l1.join("etc")).unwrap();
    fs::create_dir_all(&l2).unwrap();
    fs::write(l1.join("etc/motd"), "hi\n").unwrap();
    fs::write(l2.join("file"), "x").unwrap();
    let out = dir.join(out);
    let o = lxcri(&[
        "image",
        "build",
        "--name",
        "local/cli:t1",
        "--layer",
        l1.to_str().unwrap(),
        "--layer",
        l2.to_str().unwrap(),
        "--entrypoint",
        "/bin/sh",
        "--entrypoint",
        "-c",
        "--cmd",
        "echo hi",
        "--env",
        "A=b",
        "--workdir=/etc",
        "--mtime",
        "0",
        "-o",
        out.to_str().unwrap(),
    ]);
    (out, o)
}

fn blob_of(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn inspect_json(path: &Path) -> serde_json::Value {
    let o = lxcri(&["image", "inspect", "--json", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON")
}

#[test]
fn help_and_version() {
    // lxcri's own version first, then liblxc's (asked of lxcri-monitor beside the binary) and
    // the containerd-shim crate's.
    let o = lxcri(&["--version"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("lxcri {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("liblxc "), "{out}");
    assert!(lines[2].starts_with("containerd-shim 0."), "{out}");
    for args in [
        &["--help"][..],
        &["image", "--help"],
        &["image", "build", "--help"],
    ] {
        let o = lxcri(args);
        assert_eq!(code(&o), 0, "{args:?}");
        assert!(
            stdout(&o).contains("Usage: lxcri"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    assert_eq!(code(&lxcri(&[])), 2);
    let o = lxcri(&["frobnicate"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown command"), "{}", stderr(&o));
    let o = lxcri(&["image", "validate", "--bogus", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown option"), "{}", stderr(&o));
}

#[test]
fn valid_document_exits_0() {
    let t = tempfile::tempdir().unwrap();
    let p = write_json(
        t.path(),
        "m.json",
        &manifest(&format!("sha256:{}", hex('b'))),
    );
    let o = lxcri(&["image", "validate", p.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("valid: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 layer"), "{}", stdout(&o));
    // Also with an explicit media type that agrees.
    let o = lxcri(&[
        "image",
        "validate",
        "--media-type",
        OCI_MANIFEST,
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn invalid_document_exits_1_with_one_problem_per_line() {
    let t = tempfile::tempdir().unwrap();
    let mut m = manifest("sha256:ab");
    m["config"]["size"] = serde_json::json!(-1);
    let p = write_json(t.path(), "bad.json", &m);
    let o = lxcri(&["image", "validate", p.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "two problems and a summary: {err}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("manifest: layers[0].digest: ")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("manifest: config.size: ")),
        "{err}"
    );
    assert!(lines.last().unwrap().starts_with("invalid: "), "{err}");
}

#[test]
fn unknown_kind_exits_2_and_says_to_give_media_type() {
    let t = tempfile::tempdir().unwrap();
    let p = write_json(t.path(), "x.json", &serde_json::json!({"schemaVersion": 2}));
    let o = lxcri(&["image", "validate", p.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--media-type"), "{}", stderr(&o));
    let o = lxcri(&[
        "image",
        "validate",
        "--media-type",
        "application/x-nope",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    // With a kind it is validated: an index without manifests is invalid.
    let o = lxcri(&[
        "image",
        "validate",
        "--media-type",
        "index",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("manifests"), "{}", stderr(&o));
}

#[test]
fn missing_path_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope.json");
    let o = lxcri(&["image", "validate", missing.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nope.json"), "{}", stderr(&o));
    let o = lxcri(&["image", "validate"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn built_layout_validates_and_inspects() {
    let t = tempfile::tempdir().unwrap();
    let (out, o) = build(t.path(), "layout");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("built local/cli:t1 (2 layer(s))"),
        "{}",
        stdout(&o)
    );
    let o = lxcri(&["image", "validate", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("4 blob(s)"), "{}", stdout(&o));

    let v = inspect_json(&out);
    let img = &v["images"][0];
    assert_eq!(img["image_name"], "local/cli:t1");
    assert_eq!(img["ref_name"], "t1");
    assert_eq!(
        img["config"]["entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    assert_eq!(img["config"]["cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(img["config"]["working_dir"], "/etc");
    let diff_ids: Vec<String> = serde_json::from_value(img["diff_ids"].clone()).unwrap();
    let chain_ids: Vec<String> = serde_json::from_value(img["chain_ids"].clone()).unwrap();
    assert_eq!(chain_ids, image_core::chainid::chain_ids(&diff_ids));
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);

    let o = lxcri(&["image", "inspect", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("image local/cli:t1"), "{text}");
    assert!(
        text.contains(&format!("chain id:   {}", chain_ids[1])),
        "{text}"
    );
}

#[test]
fn built_archive_validates() {
    let t = tempfile::tempdir().unwrap();
    let (out, o) = build(t.path(), "img.tar");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lxcri(&["image", "validate", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("OCI image archive"), "{}", stdout(&o));
    assert_eq!(
        inspect_json(&out)["images"][0]["image_name"],
        "local/cli:t1"
    );
}

#[test]
fn corrupted_blob_exits_1_naming_the_blob() {
    let t = tempfile::tempdir().unwrap();
    let (out, o) = build(t.path(), "layout");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let layer = inspect_json(&out)["images"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = blob_of(&out, &layer);
    let mut bytes = fs::read(&p).unwrap();
    bytes[10] ^= 0x55;
    fs::write(&p, bytes).unwrap();
    let o = lxcri(&["image", "validate", out.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let err = stderr(&o);
    let hex = layer.trim_start_matches("sha256:");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("blobs/sha256/{hex} (layer): content digest is"))),
        "{err}"
    );
}

#[test]
fn missing_blob_exits_1() {
    let t = tempfile::tempdir().unwrap();
    let (out, o) = build(t.path(), "layout");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let layer = inspect_json(&out)["images"][0]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(blob_of(&out, &layer)).unwrap();
    let o = lxcri(&["image", "validate", out.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("layers[1]: the layer"), "{err}");
    assert!(err.contains("is missing"), "{err}");
}

#[test]
fn build_usage_errors_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let o = lxcri(&["image", "build", "-o", out.to_str().unwrap(), "--busybox"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--name"), "{}", stderr(&o));
    let o = lxcri(&["image", "build", "--name", "x", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no layers"), "{}", stderr(&o));
    let o = lxcri(&[
        "image",
        "build",
        "--name",
        "x",
        "--layer",
        "/nonexistent-lxcri",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("/nonexistent-lxcri"), "{}", stderr(&o));
}

#[test]
fn busybox_build() {
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("SKIP busybox_build: /bin/busybox missing (apt-get install busybox-static)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("bb.tar");
    let o = lxcri(&[
        "image",
        "build",
        "--name",
        "local/busybox:latest",
        "--busybox",
        "--cmd",
        "/bin/sh",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lxcri(&["image", "validate", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
