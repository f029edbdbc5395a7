//! A private CNI network for one test: a bridge with a unique name and /24 subnet, configured
//! for Debian's `containernetworking-plugins` (bridge + host-local; containerd adds loopback),
//! with its configuration and IPAM state in the test's own directory. Dropping it deletes the
//! bridge.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

pub struct CniNetwork {
    /// The network's name (also the conflist's).
    pub name: String,
    /// The Linux bridge the `bridge` plugin creates on first use (at most 15 bytes).
    pub bridge: String,
    /// The pods' subnet, `10.A.B.0/24`.
    pub subnet: String,
    conf_dir: PathBuf,
}

impl CniNetwork {
    /// Writes the conflist into `dir/cni/conf` (IPAM state in `dir/cni/ipam`). Panics, saying
    /// what to install, when the plugins are missing.
    pub fn create(dir: &Path) -> CniNetwork {
        for plugin in ["bridge", "host-local", "loopback"] {
            let p = Path::new(CNI_BIN_DIR).join(plugin);
            assert!(
                p.is_file(),
                "{} is missing: install Debian's containernetworking-plugins (scripts/setup.sh)",
                p.display()
            );
        }
        let (bridge, subnet) = free_bridge_and_subnet();
        let name = format!("{bridge}-net");
        let conf_dir = dir.join("cni/conf");
        let ipam_dir = dir.join("cni/ipam");
        fs::create_dir_all(&conf_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", conf_dir.display()));
        // No gateway, no masquerading: these machines have no iptables, and pods on one bridge
        // reach each other at layer 2 without either.
        let conflist = format!(
            r#"{{
  "cniVersion": "0.4.0",
  "name": "{name}",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{bridge}",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "{subnet}"}}]],
        "dataDir": "{}"
      }}
    }}
  ]
}}
"#,
            ipam_dir.display()
        );
        let file = conf_dir.join("10-lxcri-test.conflist");
        fs::write(&file, conflist)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        CniNetwork {
            name,
            bridge,
            subnet,
            conf_dir,
        }
    }

    /// The directory containerd's `cni.conf_dir` points to.
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// The subnet's first three octets with a dot (`10.A.B.`): every pod IP starts with it.
    pub fn prefix(&self) -> &str {
        self.subnet.trim_end_matches("0/24")
    }

    /// Network interfaces of the host whose name contains `s` (`ip -o link`).
    pub fn host_links_named(s: &str) -> Vec<String> {
        let out = Command::new("ip").args(["-o", "link", "show"]).output();
        let Ok(out) = out else { return Vec::new() };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(s))
            .map(String::from)
            .collect()
    }
}

impl Drop for CniNetwork {
    fn drop(&mut self) {
        if !Self::host_links_named(&format!(": {}:", self.bridge)).is_empty() {
            let out = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "[harness] cannot delete bridge {}: {}; delete it with `ip link del {}`",
                    self.bridge,
                    String::from_utf8_lossy(&o.stderr).trim(),
                    self.bridge
                ),
                Err(e) => eprintln!("[harness] cannot run ip link del {}: {e}", self.bridge),
            }
        }
    }
}

/// A bridge name and a /24 that no interface or route of the host uses yet.
fn free_bridge_and_subnet() -> (String, String) {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let addrs = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let seed = crate::unique_id("x");
    let mut h: u32 = 2166136261;
    for b in seed.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    for i in 0..256u32 {
        let v = h.wrapping_add(i.wrapping_mul(2654435761));
        let (a, b) = (200 + (v >> 8) % 50, v % 256);
        let net = format!("10.{a}.{b}.");
        if routes.contains(&net) || addrs.contains(&net) {
            continue;
        }
        let bridge = format!("lxb{:08x}", v);
        if !CniNetwork::host_links_named(&bridge).is_empty() {
            continue;
        }
        return (bridge, format!("{net}0/24"));
    }
    panic!("no free 10.200-249.x.0/24 subnet for a test bridge: remove stale lxb* bridges");
}
