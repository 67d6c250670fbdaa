//! Names weft reserves for applets that later work will build. Invoked today they say so and fail.

use std::ffi::OsString;
use std::process::ExitCode;

fn not_built(name: &str) -> ExitCode {
    eprintln!("weft: the {name} applet is not built in this version of weft");
    ExitCode::FAILURE
}

pub fn main_mk_docker_opts(_: Vec<OsString>) -> ExitCode {
    not_built("mk-docker-opts")
}
