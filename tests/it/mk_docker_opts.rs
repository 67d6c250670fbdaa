//! mk-docker-opts as flanneld.service's ExecStartPost runs it: every flag combination against
//! golden files derived by running the script's behaviour under dash
//! (testdata/mk-docker-opts/reference.sh), errors, the atomic write and the routing-table check.
//! tests/dockerd.rs starts a real dockerd on the generated options.
//!
//! `WEFT_BLESS=1 cargo test --test mk_docker_opts reference` rewrites golden/ from reference.sh;
//! `WEFT_MDO_REFERENCE=/path/to/mk-docker-opts.sh` runs the reference tests on upstream's script.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/mk-docker-opts")
}

/// One invocation: input file (testdata/mk-docker-opts/input/<input>.env), flags after
/// `-f IN -d OUT`, and the inherited environment.
struct Case {
    name: String,
    input: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

fn case(
    name: &str,
    input: &'static str,
    args: &[&'static str],
    env: &[(&'static str, &'static str)],
) -> Case {
    Case {
        name: name.to_string(),
        input,
        args: args.to_vec(),
        env: env.to_vec(),
    }
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // Every combination of -i, -c, -m and -k on upstream's sample_subnet.env.
    for bits in 0..16u8 {
        let mut args = Vec::new();
        let mut tag = String::new();
        for (bit, flag) in [(1, "-i"), (2, "-c"), (4, "-m")] {
            if bits & bit != 0 {
                args.push(flag);
                tag.push_str(&flag[1..]);
            }
        }
        if bits & 8 != 0 {
            args.extend(["-k", "CUSTOM_KEY"]);
            tag.push('k');
        }
        let name = if tag.is_empty() {
            "sample".to_string()
        } else {
            format!("sample-{tag}")
        };
        v.push(case(&name, "sample", &args, &[]));
    }
    let unit: &[&str] = &["-k", "DOCKER_NETWORK_OPTIONS"];
    v.extend([
        // flanneld -ip-masq: docker must not masquerade too (the inversion).
        case("ipmasq-true", "ipmasq-true", &[], &[]),
        case("ipmasq-true-c", "ipmasq-true", &["-c"], &[]),
        case("ipmasq-true-m", "ipmasq-true", &["-m"], &[]),
        // What flanneld.service's ExecStartPost runs.
        case("ipmasq-true-unit", "ipmasq-true", unit, &[]),
        // The combined variable starts with the inherited value and a space: two spaces follow.
        case(
            "ipmasq-true-unit-inherited",
            "ipmasq-true",
            &["-c", "-k", "DOCKER_NETWORK_OPTIONS"],
            &[("DOCKER_NETWORK_OPTIONS", "--log-level=warn --debug")],
        ),
        case(
            "sample-inherited-docker-opts",
            "sample",
            &[],
            &[("DOCKER_OPTS", "--debug")],
        ),
        case(
            "sample-inherited-docker-opts-c",
            "sample",
            &["-c"],
            &[("DOCKER_OPTS", "--debug")],
        ),
        // An inherited DOCKER_OPT_* variable is an option too, sorted in by name.
        case(
            "sample-inherited-option",
            "sample",
            &[],
            &[("DOCKER_OPT_LABEL", "--label=rack=r1")],
        ),
        // The file's assignment wins over the environment; the environment fills what it lacks.
        case(
            "sample-env-mtu-overridden",
            "sample",
            &[],
            &[("FLANNEL_MTU", "9000")],
        ),
        case(
            "no-mtu-inherited-mtu",
            "no-mtu",
            &[],
            &[("FLANNEL_MTU", "9000")],
        ),
        case("no-ipmasq", "no-ipmasq", &[], &[]),
        case("no-mtu", "no-mtu", &[], &[]),
        // No IPv6 option exists: the IPv6 lines change nothing.
        case("dual-stack", "dual-stack", &[], &[]),
        case("shell-forms", "shell-forms", &[], &[]),
        case("shell-forms-i", "shell-forms", &["-i"], &[]),
        // -m skips the FLANNEL_IPMASQ check altogether.
        case("invalid-ipmasq-m", "invalid-ipmasq", &["-m"], &[]),
    ]);
    v
}

fn run_with(program: &[&str], input: &Path, out: &Path, c: &Case) -> Output {
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..])
        .arg("-f")
        .arg(input)
        .arg("-d")
        .arg(out)
        .args(&c.args)
        .env_clear()
        .env("PATH", PATH);
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn weft_opts() -> String {
    bin_dir().join("mk-docker-opts").display().to_string()
}

/// reference.sh, or the real upstream script when WEFT_MDO_REFERENCE names a copy of it (to
/// re-check the golden files against it on a machine that has one).
fn reference() -> String {
    std::env::var("WEFT_MDO_REFERENCE")
        .unwrap_or_else(|_| data().join("reference.sh").display().to_string())
}

/// dash is the /bin/sh the script meets on Debian; its `set` and `echo` decide the bytes.
fn dash() -> &'static str {
    assert!(
        Path::new("/bin/dash").exists(),
        "/bin/dash is needed (Debian's dash package)"
    );
    "/bin/dash"
}

fn input(c: &Case) -> PathBuf {
    data().join("input").join(format!("{}.env", c.input))
}

fn golden(c: &Case) -> PathBuf {
    data().join("golden").join(format!("{}.env", c.name))
}

#[test]
fn every_case_matches_its_golden_file() {
    let d = TempDir::new("mdo");
    let all = cases();
    for c in &all {
        let out = d.path().join(format!("{}.out", c.name));
        let o = run_with(&[&weft_opts()], &input(c), &out, c);
        assert!(o.status.success(), "{}: {o:?}", c.name);
        assert!(o.stderr.is_empty(), "{}: {o:?}", c.name);
        let want = std::fs::read(golden(c)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let got = std::fs::read(&out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{}",
            c.name
        );
    }
    // Every golden file belongs to a case (a renamed case leaves no stale file behind).
    let names: Vec<String> = all.iter().map(|c| format!("{}.env", c.name)).collect();
    for e in std::fs::read_dir(data().join("golden")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(names.contains(&n), "golden/{n} has no case");
    }
}

#[test]
fn reference_script_produces_the_golden_files() {
    let bless = std::env::var_os("WEFT_BLESS").is_some();
    let d = TempDir::new("mdoref");
    for c in &cases() {
        let out = d.path().join(format!("{}.out", c.name));
        let o = run_with(&[dash(), &reference()], &input(c), &out, c);
        assert!(o.status.success(), "{}: {o:?}", c.name);
        let got = std::fs::read(&out).unwrap();
        if bless {
            std::fs::write(golden(c), &got).unwrap();
        }
        let want = std::fs::read(golden(c)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{}",
            c.name
        );
    }
}

/// The expectations of upstream's own test (dist/mk_docker_opts_test.go), spelled out, so the
/// golden files cannot drift from them unnoticed.
#[test]
fn upstream_test_expectations_hold() {
    let three = "DOCKER_OPT_BIP=\"--bip=10.1.74.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq=true\"\nDOCKER_OPT_MTU=\"--mtu=1472\"\n";
    let combined = " --bip=10.1.74.1/24 --ip-masq=true --mtu=1472";
    let expect = [
        ("sample", format!("{three}DOCKER_OPTS=\"{combined}\"\n")),
        ("sample-i", three.to_string()),
        ("sample-c", format!("DOCKER_OPTS=\"{combined}\"\n")),
        ("sample-k", format!("{three}CUSTOM_KEY=\"{combined}\"\n")),
        (
            "sample-m",
            "DOCKER_OPT_BIP=\"--bip=10.1.74.1/24\"\nDOCKER_OPT_MTU=\"--mtu=1472\"\n\
             DOCKER_OPTS=\" --bip=10.1.74.1/24 --mtu=1472\"\n"
                .to_string(),
        ),
    ];
    for (name, want) in expect {
        let got =
            std::fs::read_to_string(data().join("golden").join(format!("{name}.env"))).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

/// Runs weft's mk-docker-opts with `args` and a clean environment.
fn weft_run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(weft_opts());
    cmd.args(args).env_clear().env("PATH", PATH);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn invalid_ipmasq_is_refused_before_writing_like_the_script() {
    let d = TempDir::new("mdoinv");
    let c = case("x", "invalid-ipmasq", &[], &[]);
    for (who, program) in [
        ("weft", vec![weft_opts()]),
        ("reference", vec![dash().to_string(), reference()]),
    ] {
        let out = d.path().join(format!("{who}.env"));
        std::fs::write(&out, "old\n").unwrap();
        let p: Vec<&str> = program.iter().map(String::as_str).collect();
        let o = run_with(&p, &input(&c), &out, &c);
        assert_eq!(o.status.code(), Some(1), "{who}: {o:?}");
        assert_eq!(
            stderr(&o),
            "Invalid value of FLANNEL_IPMASQ: yes\n",
            "{who}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n", "{who}");
    }
}

#[test]
fn missing_or_malformed_env_file_is_an_error_that_writes_nothing() {
    let d = TempDir::new("mdobad");
    let out = d.path().join("docker.env");
    std::fs::write(&out, "old\n").unwrap();
    let outs = out.to_str().unwrap();
    let missing = d.path().join("subnet.env");
    let o = weft_run(&["-f", missing.to_str().unwrap(), "-d", outs], &[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = stderr(&o);
    assert!(
        e.contains(missing.to_str().unwrap()) && e.contains("flanneld is not running"),
        "{e}"
    );

    for (text, want) in [
        (
            "FLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=$(cat /x)\n",
            "line 2",
        ),
        (
            "FLANNEL_SUBNET=10.1.74.1/24\r\nFLANNEL_MTU=1472\r\n",
            "CRLF",
        ),
        (
            "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_MTU=1472\n",
            "FLANNEL_SUBNET is missing",
        ),
        ("FLANNEL_SUBNET=10.1.74/24\n", "not an IPv4 address/prefix"),
        (
            "FLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=big\n",
            "FLANNEL_MTU=\"big\" is not a number",
        ),
        ("garbage\n", "not a NAME=value assignment"),
    ] {
        std::fs::write(&missing, text).unwrap();
        let o = weft_run(&["-f", missing.to_str().unwrap(), "-d", outs], &[]);
        assert_eq!(o.status.code(), Some(1), "{text:?}: {o:?}");
        assert!(stderr(&o).contains(want), "{text:?}: {}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n", "{text:?}");
    }
}

#[test]
fn usage_exits_1_and_writes_nothing() {
    let d = TempDir::new("mdousage");
    let out = d.path().join("docker.env");
    let outs = out.to_str().unwrap();
    for (args, complaint) in [
        (vec!["-h"], None),
        (vec!["-d", outs, "-?"], None),
        (vec!["-d", outs, "-x"], Some("illegal option -- x")),
        (
            vec!["-d", outs, "-i", "-k"],
            Some("option requires an argument -- k"),
        ),
    ] {
        let o = weft_run(&args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        let e = stderr(&o);
        assert!(
            e.contains("usage: mk-docker-opts [-f FLANNEL-ENV-FILE]"),
            "{e}"
        );
        if let Some(c) = complaint {
            assert!(e.contains(c), "{e}");
        }
        assert!(o.stdout.is_empty());
        assert!(!out.exists(), "{args:?} wrote the output");
    }
    // `weft mk-docker-opts` is the same applet.
    let o = Command::new(weft())
        .args(["mk-docker-opts", "-h"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("usage: mk-docker-opts"));
}

#[test]
fn output_is_replaced_atomically_keeping_mode_and_following_symlinks() {
    let d = TempDir::new("mdoatomic");
    let sample = data().join("input/sample.env");
    let f = sample.to_str().unwrap();
    let want = std::fs::read_to_string(data().join("golden/sample.env")).unwrap();

    // An existing file keeps its permission bits and gets the new content.
    let out = d.path().join("docker.env");
    std::fs::write(
        &out,
        "a much longer previous content than the new one\n".repeat(10),
    )
    .unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = weft_run(&["-f", f, "-d", out.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    // A symlink is written through, as the script's redirection does.
    let real = d.path().join("real.env");
    std::fs::write(&real, "old\n").unwrap();
    let link = d.path().join("link.env");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = weft_run(&["-f", f, "-d", link.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{o:?}");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), want);

    // A missing directory (/run/flannel before flanneld made it) is created.
    let nested = d.path().join("run/flannel/docker");
    let o = weft_run(&["-f", f, "-d", nested.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&nested).unwrap(), want);

    // No temporary file is left anywhere.
    for dir in [d.path().to_path_buf(), d.path().join("run/flannel")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with('.'), "leftover {n}");
        }
    }
}

/// A route to our own subnet through a gateway (another host's, from a stale lease) makes the
/// script exit 1 after writing; a connected route (no gateway) does not. Both implementations run
/// in the same throwaway namespace.
#[test]
fn a_gateway_route_to_the_own_subnet_fails_like_the_script() {
    let ns = Netns::new("mdort");
    ns.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    ns.ip(&["link", "set", "up0", "up"]);
    ns.ip(&["link", "set", "up1", "up"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "up0"]);
    let d = TempDir::new("mdort");
    let c = case("sample", "sample", &[], &[]);
    let run_both = |want_code: i32, want_err: &str| {
        for (who, program) in [
            ("weft", vec![weft_opts()]),
            ("reference", vec![dash().to_string(), reference()]),
        ] {
            let out = d.path().join(format!("{who}.env"));
            let _ = std::fs::remove_file(&out);
            let mut p = vec!["ip", "netns", "exec", ns.name.as_str()];
            p.extend(program.iter().map(String::as_str));
            let o = run_with(&p, &input(&c), &out, &c);
            assert_eq!(o.status.code(), Some(want_code), "{who}: {o:?}");
            assert!(stderr(&o).contains(want_err), "{who}: {}", stderr(&o));
            // Written either way: the check comes after the write.
            assert_eq!(
                std::fs::read(&out).unwrap(),
                std::fs::read(golden(&c)).unwrap(),
                "{who}"
            );
        }
    };
    ns.ip(&["route", "add", "10.1.74.0/24", "dev", "up0"]);
    run_both(0, "");
    ns.ip(&["route", "del", "10.1.74.0/24", "dev", "up0"]);
    ns.ip(&[
        "route",
        "add",
        "10.1.74.0/24",
        "via",
        "192.0.2.2",
        "dev",
        "up0",
    ]);
    run_both(
        1,
        "Your routing table already contains the subnet: 10.1.74.0/24 via 192.0.2.2 dev up0",
    );
}
