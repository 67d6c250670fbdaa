//! The CNI protocol: environment, configuration, results in every spec version, errors,
//! delegation to other plugins, and [`run`], the one boundary that turns a [`Plugin`] into a
//! process speaking the protocol on stdin/stdout.

pub mod args;
pub mod conf;
pub mod delegate;
pub mod env;
pub mod error;
pub mod json;
pub mod lenient;
pub mod result;
pub mod runtime;
pub mod skel;
pub mod version;

pub use conf::NetConf;
pub use env::{CmdArgs, Command};
pub use error::{Code, Error};
pub use result::CniResult;
pub use skel::{run, Plugin};
