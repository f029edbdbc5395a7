//! `lxcri image validate | inspect | build`.

use super::{usage, Io, EXIT_INVALID, EXIT_OK};
use clap::{Args, Subcommand};
use image_core::builder::{busybox_rootfs, BuiltImage, ImageBuilder, ImageConfigSpec};
use image_core::layout::{ImageInfo, Layout, MAX_JSON_BYTES};
use image_core::platform::Platform;
use image_core::validate::{self, Document, Kind};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Validate a JSON document, an OCI image layout or an OCI archive
    #[command(
        long_about = "Validate PATH: one JSON document (manifest, index, config, descriptor, \
                      oci-layout), an OCI image layout directory, or an OCI archive (tar). The \
                      document's kind comes from --media-type, else from its own mediaType. \
                      Layouts are verified blob by blob (digest, size, validity of every \
                      manifest, index and config).",
        after_help = super::EXIT_STATUS
    )]
    Validate(ValidateArgs),
    /// Describe the images of an OCI layout or archive
    #[command(
        long_about = "Describe each image (platform) of an OCI layout or archive: manifest \
                      digest, config summary, layers, diff IDs and chain IDs.",
        after_help = super::EXIT_STATUS
    )]
    Inspect(InspectArgs),
    /// Build an OCI image layout (a directory) or archive (OUT.tar)
    #[command(
        long_about = "Build an image: one gzip layer per --layer DIR, in order (--busybox \
                      first adds a minimal busybox rootfs layer made from the host's \
                      /bin/busybox). OUT ending in .tar is an OCI archive (ctr images import \
                      OUT), anything else a layout directory.",
        after_help = super::EXIT_STATUS
    )]
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// A JSON document, an OCI image layout directory or an OCI archive (tar)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The document's kind: a media type or one of manifest, index, config, descriptor,
    /// oci-layout (default: the document's own mediaType)
    #[arg(long, value_name = "TYPE")]
    media_type: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// An OCI image layout directory or an OCI archive (tar)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The image's name, for example local/busybox:latest
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A directory to pack as a layer (repeat for each layer, lowest first)
    #[arg(long = "layer", value_name = "DIR")]
    layers: Vec<PathBuf>,
    /// First add a minimal busybox rootfs layer made from the host's /bin/busybox
    #[arg(long)]
    busybox: bool,
    /// Where to write: OUT.tar for an OCI archive, anything else for a layout directory
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// The config's Entrypoint (repeat for each argument)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// The config's Cmd (repeat for each argument)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// An environment variable of the config (repeat)
    #[arg(long, value_name = "KEY=VALUE", allow_hyphen_values = true)]
    env: Vec<String>,
    /// The config's WorkingDir
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// The config's User
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// The image's platform (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// A fixed mtime for every file of the layers, for reproducible layers
    #[arg(long, value_name = "SECONDS")]
    mtime: Option<String>,
}

/// `lxcri image ARGS...` (the arguments after `image`).
pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    super::run_group(&["image"], args, io)
}

pub(super) fn exec(cmd: ImageCommand, io: &mut Io<'_>) -> i32 {
    match cmd {
        ImageCommand::Validate(a) => validate_cmd(a, io),
        ImageCommand::Inspect(a) => inspect_cmd(a, io),
        ImageCommand::Build(a) => match build(a, io) {
            Ok(code) => code,
            Err(m) => usage(io, &m),
        },
    }
}

/// The problems on stderr, one a line, then `invalid: <summary>`; exit 1.
fn invalid<P: std::fmt::Display>(
    io: &mut Io<'_>,
    problems: impl Iterator<Item = P>,
    summary: &str,
) -> i32 {
    for pr in problems {
        let _ = writeln!(io.err, "{pr}");
    }
    let _ = writeln!(io.err, "invalid: {summary}");
    EXIT_INVALID
}

/// What a path holds.
enum Input {
    Json(Vec<u8>),
    Layout(Layout),
}

/// A tar archive has the `ustar` magic at offset 257 of its first header.
fn looks_like_tar(b: &[u8]) -> bool {
    b.len() >= 262 && &b[257..262] == b"ustar"
}

fn looks_like_json(b: &[u8]) -> bool {
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'{' || *c == b'[')
}

/// Opens PATH as a JSON document or a layout; `Err` is a usage/I/O message (exit 2).
fn open_input(path: &Path, command: &str) -> Result<Input, String> {
    let meta = fs::metadata(path).map_err(|e| {
        format!(
            "{command}: cannot open {}: {e}; give a JSON file, an OCI layout directory or an OCI archive",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        let mut head = [0u8; 512];
        let n = fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|e| format!("{command}: cannot read {}: {e}", path.display()))?;
        // Anything that is not a tar archive is taken as a JSON document, so that a broken one
        // is reported as invalid (exit 1), not as an unreadable archive.
        if looks_like_json(&head[..n]) || !looks_like_tar(&head[..n]) {
            if meta.len() > MAX_JSON_BYTES {
                return Err(format!(
                    "{command}: {} is {} bytes, more than the {MAX_JSON_BYTES} lxcri reads for one JSON document",
                    path.display(),
                    meta.len()
                ));
            }
            let bytes = fs::read(path)
                .map_err(|e| format!("{command}: cannot read {}: {e}", path.display()))?;
            return Ok(Input::Json(bytes));
        }
    }
    Layout::open(path)
        .map(Input::Layout)
        .map_err(|e| format!("{command}: {e}; give a JSON file, an OCI layout directory or an OCI archive (plain tar)"))
}

/// A `--media-type` value: a media type or a kind name.
fn kind_from_arg(arg: &str) -> Option<Kind> {
    match arg {
        "manifest" => Some(Kind::Manifest),
        "index" => Some(Kind::Index),
        "config" => Some(Kind::Config),
        "descriptor" => Some(Kind::Descriptor),
        "oci-layout" | "layout" => Some(Kind::Layout),
        image_core::media::OCI_DESCRIPTOR => Some(Kind::Descriptor),
        image_core::media::OCI_LAYOUT_HEADER => Some(Kind::Layout),
        mt => Kind::from_media_type(mt),
    }
}

fn validate_cmd(args: ValidateArgs, io: &mut Io<'_>) -> i32 {
    const COMMAND: &str = "lxcri image validate";
    let media_type = args.media_type;
    let path = args.path;
    let path = path.as_path();
    let input = match open_input(path, COMMAND) {
        Ok(i) => i,
        Err(m) => return usage(io, &m),
    };
    match input {
        Input::Json(bytes) => validate_json(path, &bytes, media_type.as_deref(), io),
        Input::Layout(layout) => {
            if media_type.is_some() {
                return usage(
                    io,
                    &format!(
                        "lxcri image validate: {} is an image layout, --media-type only applies to one JSON document",
                        path.display()
                    ),
                );
            }
            let report = layout.verify();
            if report.is_clean() {
                let _ = writeln!(
                    io.out,
                    "valid: {}: OCI image {}, {} index(es), {} manifest(s), {} blob(s), {} bytes verified",
                    path.display(),
                    if layout.is_archive() { "archive" } else { "layout" },
                    report.indexes,
                    report.manifests,
                    report.blobs,
                    report.bytes
                );
                EXIT_OK
            } else {
                let summary = format!("{}: {} problem(s)", path.display(), report.problems.len());
                invalid(io, report.problems.iter(), &summary)
            }
        }
    }
}

fn validate_json(path: &Path, bytes: &[u8], media_type: Option<&str>, io: &mut Io<'_>) -> i32 {
    let own_media_type: Option<String> = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (kind, expected) = match media_type {
        Some(mt) => match kind_from_arg(mt) {
            Some(k) => (k, Kind::from_media_type(mt).map(|_| mt)),
            None => {
                return usage(
                    io,
                    &format!(
                        "lxcri image validate: --media-type {mt:?} is not a manifest, index, config, descriptor or oci-layout media type (layers are not JSON documents)"
                    ),
                )
            }
        },
        None => {
            let from_own = own_media_type.as_deref().and_then(Kind::from_media_type);
            match (from_own, file_name) {
                (Some(k), _) => (k, None),
                (None, "oci-layout") => (Kind::Layout, None),
                (None, "index.json") => (Kind::Index, None),
                (None, _) => {
                    let why = match &own_media_type {
                        Some(mt) => format!("its mediaType {mt:?} is not a manifest, index or config type"),
                        None => "it has no mediaType".to_string(),
                    };
                    return usage(
                        io,
                        &format!(
                            "lxcri image validate: cannot tell what kind of document {} is: {why}; give --media-type (for example {} or manifest, index, config, descriptor, oci-layout)",
                            path.display(),
                            image_core::media::OCI_MANIFEST
                        ),
                    );
                }
            }
        }
    };
    match validate::validate(kind, expected, bytes) {
        Ok(doc) => {
            let _ = writeln!(io.out, "valid: {}: {}", path.display(), summarize(&doc));
            EXIT_OK
        }
        Err(problems) => {
            let summary = format!("{}: {} problem(s)", path.display(), problems.len());
            invalid(io, problems.iter(), &summary)
        }
    }
}

fn summarize(doc: &Document) -> String {
    match doc {
        Document::Manifest(m) => format!(
            "manifest{}, config {}, {} layer(s)",
            m.media_type()
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            m.config().digest(),
            m.layers().len()
        ),
        Document::Index(i) => format!(
            "index{}, {} manifest(s)",
            i.media_type()
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            i.manifests().len()
        ),
        Document::Config(c) => format!(
            "config for {}/{}, {} diff ID(s)",
            c.os(),
            c.architecture(),
            c.rootfs().diff_ids().len()
        ),
        Document::Descriptor(d) => format!(
            "descriptor of {} ({}, {} bytes)",
            d.digest(),
            d.media_type(),
            d.size()
        ),
        Document::Layout(l) => format!("oci-layout version {}", l.image_layout_version()),
    }
}

fn inspect_cmd(args: InspectArgs, io: &mut Io<'_>) -> i32 {
    const COMMAND: &str = "lxcri image inspect";
    let path = args.path;
    let path = path.as_path();
    let layout = match open_input(path, COMMAND) {
        Ok(Input::Layout(l)) => l,
        Ok(Input::Json(_)) => {
            return usage(
                io,
                &format!(
                    "lxcri image inspect: {} is a single JSON document; inspect reads OCI layouts and archives (use lxcri image validate for one document)",
                    path.display()
                ),
            )
        }
        Err(m) => return usage(io, &m),
    };
    let images = match layout.images() {
        Ok(i) => i,
        Err(problems) => {
            let summary = format!(
                "{}: no image could be described; run lxcri image validate {}",
                path.display(),
                path.display()
            );
            return invalid(io, problems.iter(), &summary);
        }
    };
    if args.json {
        let v = serde_json::json!({
            "path": path.display().to_string(),
            "images": images,
        });
        match serde_json::to_string_pretty(&v) {
            Ok(s) => {
                let _ = writeln!(io.out, "{s}");
            }
            Err(e) => return usage(io, &format!("lxcri image inspect: cannot encode JSON: {e}")),
        }
    } else {
        for (i, img) in images.iter().enumerate() {
            if i > 0 {
                let _ = writeln!(io.out);
            }
            let _ = write_image(io.out, img);
        }
    }
    EXIT_OK
}

fn write_image(out: &mut dyn Write, img: &ImageInfo) -> std::io::Result<()> {
    let name = img
        .image_name
        .clone()
        .or_else(|| img.ref_name.clone())
        .unwrap_or_else(|| "(unnamed)".into());
    writeln!(out, "image {name}")?;
    if let Some(r) = &img.ref_name {
        writeln!(out, "  ref name:   {r}")?;
    }
    writeln!(
        out,
        "  platform:   {}",
        img.platform.as_deref().unwrap_or("(unknown)")
    )?;
    writeln!(
        out,
        "  manifest:   {} ({})",
        img.manifest_digest, img.manifest_media_type
    )?;
    writeln!(out, "  config:     {}", img.config_digest)?;
    let c = &img.config;
    let os = match &c.variant {
        Some(v) => format!("{}/{}/{v}", c.os, c.architecture),
        None => format!("{}/{}", c.os, c.architecture),
    };
    writeln!(out, "    os/arch:    {os}")?;
    writeln!(out, "    entrypoint: {}", quoted(&c.entrypoint))?;
    writeln!(out, "    cmd:        {}", quoted(&c.cmd))?;
    writeln!(
        out,
        "    workdir:    {}",
        c.working_dir.as_deref().unwrap_or("")
    )?;
    writeln!(out, "    user:       {}", c.user.as_deref().unwrap_or(""))?;
    for e in &c.env {
        writeln!(out, "    env:        {e}")?;
    }
    writeln!(out, "  layers:     {}", img.layers.len())?;
    for (i, l) in img.layers.iter().enumerate() {
        writeln!(
            out,
            "    [{i}] {} {} bytes {}",
            l.digest, l.size, l.media_type
        )?;
        if let Some(d) = img.diff_ids.get(i) {
            writeln!(out, "        diff id:  {d}")?;
        }
        if let Some(ch) = img.chain_ids.get(i) {
            writeln!(out, "        chain id: {ch}")?;
        }
    }
    if let Some(top) = img.chain_ids.last() {
        writeln!(out, "  chain id:   {top}")?;
    }
    Ok(())
}

fn quoted(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn build(p: BuildArgs, io: &mut Io<'_>) -> Result<i32, String> {
    let cmd = "lxcri image build";
    let name = p.name.ok_or_else(|| {
        format!("{cmd}: --name NAME is required (for example local/busybox:latest)")
    })?;
    let out = p.output.ok_or_else(|| {
        format!("{cmd}: -o OUT is required (OUT.tar for an archive, else a directory)")
    })?;
    let layers = p.layers;
    if layers.is_empty() && !p.busybox {
        return Err(format!(
            "{cmd}: no layers: give --layer DIR (one per layer) and/or --busybox"
        ));
    }
    for e in &p.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(format!("{cmd}: --env {e:?} is not KEY=VALUE"));
        }
    }
    let spec = ImageConfigSpec {
        entrypoint: p.entrypoint,
        cmd: p.cmd,
        env: p.env,
        working_dir: p.workdir,
        user: p.user,
    };
    let mut builder = ImageBuilder::new(&name).config(spec);
    if let Some(plat) = p.platform {
        let pl: Platform = plat
            .parse()
            .map_err(|e| format!("{cmd}: --platform: {e}"))?;
        builder = match &pl.variant {
            Some(v) => builder.platform_variant(&pl.os, &pl.architecture, v),
            None => builder.platform(&pl.os, &pl.architecture),
        };
    }
    if let Some(m) = p.mtime {
        let secs: u64 = m
            .parse()
            .map_err(|_| format!("{cmd}: --mtime {m:?} is not a number of seconds since 1970"))?;
        builder = builder.fixed_mtime(secs);
    }
    let _busybox_dir;
    if p.busybox {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("lxcri-busybox-{}-{stamp}", std::process::id()));
        _busybox_dir = TempDir(dir.clone());
        busybox_rootfs(&dir).map_err(|e| format!("{cmd}: --busybox: {e}"))?;
        builder = builder.layer_dir(dir);
    }
    for l in &layers {
        builder = builder.layer_dir(l);
    }
    let is_tar = out.extension().is_some_and(|e| e == "tar");
    let built: BuiltImage = if is_tar {
        builder.write_archive(&out)
    } else {
        builder.write_layout(&out)
    }
    .map_err(|e| format!("{cmd}: {e}"))?;
    let _ = writeln!(
        io.out,
        "built {} ({} layer(s)) into {} {}",
        built.name,
        built.layer_digests.len(),
        if is_tar { "archive" } else { "layout" },
        out.display()
    );
    let _ = writeln!(io.out, "manifest: {}", built.manifest_digest);
    let _ = writeln!(io.out, "config:   {}", built.config_digest);
    if let Some(top) = built.chain_ids.last() {
        let _ = writeln!(io.out, "chain id: {top}");
    }
    Ok(EXIT_OK)
}
