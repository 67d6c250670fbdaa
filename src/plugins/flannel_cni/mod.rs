//! The flannel CNI meta-plugin's logic: it does no networking itself. ADD reads flanneld's
//! subnet.env ([`subnet_env`]), builds a config for a delegate plugin (bridge + host-local by
//! default, [`delegate_conf`]) from its own config ([`conf`]), saves it under `dataDir`
//! ([`store`]) *before* running the delegate, and returns the delegate's result. DEL replays the
//! saved config, so it works with flanneld stopped and subnet.env gone. The saved bytes are
//! Go's `json.Marshal` output ([`gojson`]), identical to what the upstream plugin writes.

pub mod conf;
pub mod delegate_conf;
pub mod gojson;
pub mod plugin;
pub mod store;
pub mod subnet_env;

pub use conf::FlannelConf;
pub use delegate_conf::{DelegateConf, SavedConf};
pub use store::SavedConfigs;
pub use subnet_env::SubnetEnv;
