//! flanneld: [`subnet`] (the network config, lease keys and JSON, the etcd registry, the rules a
//! peer's lease must meet, subnet.env), [`backend`] (the udp, vxlan and host-gw data planes),
//! [`daemon`] (start-up, renewal, the data-plane thread, health), [`extiface`] (the external
//! interface and the address flanneld advertises); and [`docker_opts`], mk-docker-opts' turning
//! of subnet.env into docker's options.

pub mod backend;
pub mod daemon;
pub mod docker_opts;
pub mod extiface;
pub mod subnet;
