//! The bridge plugin's library side: configuration ([`conf`]), the host bridge and its ports
//! ([`host`]), and how a result's gateways are filled in ([`calc_gateways`]).

pub mod conf;
pub mod host;
pub mod plugin;

use crate::cni::result::{CniResult, Route};
use conf::BridgeConf;
use ipnet::IpNet;
use std::net::IpAddr;

/// Gateway addresses (gateway IP with the container address's prefix) to put on the bridge,
/// per family.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Gateways {
    pub v4: Vec<IpNet>,
    pub v6: Vec<IpNet>,
}

/// The first address of `n`'s subnet after the network address.
fn first_host(n: &IpNet) -> IpAddr {
    match n.network() {
        IpAddr::V4(a) => IpAddr::from(u32::from(a).wrapping_add(1).to_be_bytes()),
        IpAddr::V6(a) => IpAddr::from(u128::from(a).wrapping_add(1).to_be_bytes()),
    }
}

/// Points every IP at the container interface (index 2), fills in missing gateways when the
/// bridge is the gateway, adds one default route per family for `isDefaultGateway` unless IPAM
/// already gave one with a gateway, and returns the gateway addresses for the bridge.
pub fn calc_gateways(result: &mut CniResult, conf: &BridgeConf) -> Gateways {
    let mut gws = Gateways::default();
    let (mut default_v4, mut default_v6) = (false, false);
    for i in 0..result.ips.len() {
        let ipc = &mut result.ips[i];
        ipc.interface = Some(2);
        if ipc.gateway.is_none() && conf.is_gateway {
            ipc.gateway = Some(first_host(&ipc.address));
        }
        let (address, gateway) = (ipc.address, ipc.gateway);
        let v4 = address.addr().is_ipv4();
        let found = if v4 { &mut default_v4 } else { &mut default_v6 };
        if conf.is_default_gateway && !*found {
            let any: IpNet = if v4 {
                "0.0.0.0/0".parse().expect("literal")
            } else {
                "::/0".parse().expect("literal")
            };
            *found = result.routes.iter().any(|r| r.gw.is_some() && r.dst == any);
            if !*found {
                result.routes.push(Route::new(any, gateway));
                *found = true;
            }
        }
        if conf.is_gateway {
            if let Some(gw) = gateway {
                let net = IpNet::new(gw, address.prefix_len()).expect("prefix of a valid address");
                if v4 {
                    gws.v4.push(net);
                } else {
                    gws.v6.push(net);
                }
            }
        }
    }
    gws
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::result::IpConfig;
    use crate::cni::NetConf;

    fn conf(extra: &str) -> BridgeConf {
        let j = format!(r#"{{"cniVersion":"1.0.0","name":"n"{extra}}}"#);
        BridgeConf::load(&NetConf::parse(j.as_bytes()).unwrap(), "").unwrap()
    }

    fn ip(a: &str, gw: Option<&str>) -> IpConfig {
        IpConfig {
            interface: None,
            address: a.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
        }
    }

    #[test]
    fn fills_gateways_and_default_routes_per_family() {
        let mut r = CniResult {
            ips: vec![
                ip("10.1.2.7/24", None),
                ip("10.1.3.7/24", Some("10.1.3.254")),
                ip("2001:db8::9/64", None),
            ],
            ..Default::default()
        };
        let g = calc_gateways(&mut r, &conf(r#","isDefaultGateway":true"#));
        assert!(r.ips.iter().all(|i| i.interface == Some(2)));
        assert_eq!(r.ips[0].gateway, Some("10.1.2.1".parse().unwrap()));
        assert_eq!(r.ips[2].gateway, Some("2001:db8::1".parse().unwrap()));
        let routes: Vec<String> = r
            .routes
            .iter()
            .map(|r| format!("{} {:?}", r.dst, r.gw))
            .collect();
        assert_eq!(
            routes,
            ["0.0.0.0/0 Some(10.1.2.1)", "::/0 Some(2001:db8::1)"]
        );
        let s = |v: &[IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(s(&g.v4), ["10.1.2.1/24", "10.1.3.254/24"]);
        assert_eq!(s(&g.v6), ["2001:db8::1/64"]);
    }

    #[test]
    fn an_ipam_default_route_with_a_gateway_suppresses_ours_one_without_does_not() {
        let dflt = |gw: Option<&str>| {
            Route::new("0.0.0.0/0".parse().unwrap(), gw.map(|g| g.parse().unwrap()))
        };
        let mut r = CniResult {
            ips: vec![ip("10.1.2.7/24", None)],
            routes: vec![dflt(Some("10.1.2.99"))],
            ..Default::default()
        };
        calc_gateways(&mut r, &conf(r#","isDefaultGateway":true"#));
        assert_eq!(r.routes.len(), 1);
        let mut r = CniResult {
            ips: vec![ip("10.1.2.7/24", None)],
            routes: vec![dflt(None)],
            ..Default::default()
        };
        calc_gateways(&mut r, &conf(r#","isDefaultGateway":true"#));
        assert_eq!(r.routes.len(), 2);
    }

    #[test]
    fn without_is_gateway_nothing_is_filled() {
        let mut r = CniResult {
            ips: vec![ip("10.1.2.7/24", None)],
            ..Default::default()
        };
        let g = calc_gateways(&mut r, &conf(""));
        assert_eq!(r.ips[0].gateway, None);
        assert!(r.routes.is_empty() && g == Gateways::default());
    }
}
