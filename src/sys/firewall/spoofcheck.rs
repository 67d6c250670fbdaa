//! The bridge plugin's `macspoofchk` (the reference's `pkg/link/spoofcheck.go`): frames that
//! enter the bridge from a container's host veth must carry the container's MAC.
//!
//! Layout, in nft family `bridge` table `nat`:
//! - base chain `PREROUTING` (filter, hook prerouting, priority -300, policy accept), shared by
//!   all attachments and never removed;
//! - `PREROUTING`: `iifname "<host veth>" jump cni-br-iface-<cid>-<ifname>`;
//! - `cni-br-iface-<cid>-<ifname>`: `jump cni-br-iface-<cid>-<ifname>-mac`;
//! - `cni-br-iface-<cid>-<ifname>-mac`: `ether saddr <mac> return`, then `drop`.
//!
//! Every rule is commented `macspoofchk-<cid>-<ifname>`. Names are not hashed or shortened, as
//! in the reference; the kernel refuses chain names past 255 bytes (and nft rule comments of
//! about that length), so a container id of more than about 220 characters fails setup.
//!
//! Commands go to `nft -j -f -` as JSON, as the reference's go-nft does, so an id or name is
//! only ever data, never nft syntax.

use super::nft::Nft;
use anyhow::{Context, Result};
use serde_json::{json, Value};

const FAMILY: &str = "bridge";
const TABLE: &str = "nat";
const BASE_CHAIN: &str = "PREROUTING";

/// The attachment's regular chain; its MAC chain is this name plus `-mac`.
pub fn iface_chain(container_id: &str, ifname: &str) -> String {
    format!("cni-br-iface-{container_id}-{ifname}")
}

/// The comment on every rule of the attachment.
pub fn rule_comment(container_id: &str, ifname: &str) -> String {
    format!("macspoofchk-{container_id}-{ifname}")
}

/// Allows only `container_mac` (as a CNI result writes it, `02:42:…`) as the source of frames
/// arriving from `host_veth`.
///
/// Two transactions, as the reference: the first declares table and chains (adding what exists
/// is a no-op), the second flushes the attachment's chains and fills them, which can only work
/// once they exist. A repeated setup therefore leaves one more PREROUTING jump each time (as the
/// reference does); teardown removes them all.
pub fn setup(container_id: &str, ifname: &str, host_veth: &str, container_mac: &str) -> Result<()> {
    let nft = Nft::new()?;
    let iface = iface_chain(container_id, ifname);
    let mac = format!("{iface}-mac");
    let comment = rule_comment(container_id, ifname);
    nft.run_json(&[
        json!({"add": {"table": {"family": FAMILY, "name": TABLE}}}),
        json!({"add": {"chain": {
            "family": FAMILY, "table": TABLE, "name": BASE_CHAIN,
            "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"
        }}}),
        json!({"add": {"chain": chain(&iface)}}),
        json!({"add": {"chain": chain(&mac)}}),
    ])
    .context("failed to setup spoof-check")?;
    let rule = |chain: &str, expr: Value| {
        json!({"add": {"rule": {
            "family": FAMILY, "table": TABLE, "chain": chain, "expr": expr, "comment": comment
        }}})
    };
    nft.run_json(&[
        json!({"flush": {"chain": chain(&iface)}}),
        json!({"flush": {"chain": chain(&mac)}}),
        rule(
            BASE_CHAIN,
            json!([
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": host_veth}},
                {"jump": {"target": iface}}
            ]),
        ),
        rule(&iface, json!([{"jump": {"target": mac}}])),
        rule(
            &mac,
            json!([
                {"match": {"op": "==",
                    "left": {"payload": {"protocol": "ether", "field": "saddr"}},
                    "right": container_mac}},
                {"return": null}
            ]),
        ),
        rule(&mac, json!([{"drop": null}])),
    ])
    .context("failed to setup spoof-check")
}

/// Removes the attachment's PREROUTING jumps and both of its chains; the table and base chain
/// stay for other attachments. What is already gone counts as removed, so a repeated DEL, or
/// one for an attachment that never had the check, succeeds (the reference errors, and the
/// bridge plugin only logs it).
pub fn teardown(container_id: &str, ifname: &str) -> Result<()> {
    let nft = Nft::new()?;
    let Some(objects) = nft
        .list(&["table", FAMILY, TABLE])
        .context("failed to teardown spoof-check")?
    else {
        return Ok(());
    };
    let iface = iface_chain(container_id, ifname);
    let mac = format!("{iface}-mac");
    let comment = rule_comment(container_id, ifname);
    let mut cmds = Vec::new();
    // Jumps first: a chain that a rule still jumps to cannot be deleted.
    for rule in objects.iter().filter_map(|o| o.get("rule")) {
        let ours = rule["chain"] == BASE_CHAIN && rule["comment"] == comment.as_str();
        if let (true, Some(handle)) = (ours, rule["handle"].as_u64()) {
            cmds.push(json!({"delete": {"rule": {
                "family": FAMILY, "table": TABLE, "chain": BASE_CHAIN, "handle": handle
            }}}));
        }
    }
    let chains: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.get("chain")?.get("name")?.as_str())
        .collect();
    // The kernel deletes a chain's own rules along with it.
    for name in [&iface, &mac] {
        if chains.contains(&name.as_str()) {
            cmds.push(json!({"delete": {"chain": chain(name)}}));
        }
    }
    if cmds.is_empty() {
        return Ok(());
    }
    nft.run_json(&cmds)
        .context("failed to teardown spoof-check")
}

fn chain(name: &str) -> Value {
    json!({"family": FAMILY, "table": TABLE, "name": name})
}
