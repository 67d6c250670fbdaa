//! The runtime's side of CNI (what libcni does for containerd, CRI-O and podman): finding a
//! network's configuration list in a directory ([`load`]), building each plugin's stdin
//! ([`conflist`]), running the chain for ADD, CHECK, DEL, STATUS and GC ([`chain`]), and the
//! result cache that carries an ADD's result to its CHECK and DEL ([`cache`]). The `cnitool`
//! applet is a thin command line over it; weft's tests drive chains with it.

pub mod cache;
pub mod chain;
pub mod conflist;
pub mod load;

pub use chain::{Attachment, Runtime};
pub use conflist::ConfList;
