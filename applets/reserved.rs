//! Names weft reserves for applets that later work will build. Invoked today they say so and fail;
//! the CNI ones also answer with the spec's error object so a runtime logs a clear reason.

use std::ffi::OsString;
use std::process::ExitCode;

fn not_built(name: &str, cni: bool) -> ExitCode {
    let msg = format!("the {name} applet is not built in this version of weft");
    if cni {
        let err = weft::cni::Error::new(weft::cni::Code::Internal, msg.clone());
        print!("{}", err.to_json(None));
    }
    eprintln!("weft: {msg}");
    ExitCode::FAILURE
}

pub fn main_flannel(_: Vec<OsString>) -> ExitCode {
    not_built("flannel", true)
}

pub fn main_flanneld(_: Vec<OsString>) -> ExitCode {
    not_built("flanneld", false)
}
