#!/usr/bin/env python3
"""Builds weft's container image as one archive from the static binary alone: no base image, no
network, no docker (what `make image` runs; `make dist` ships its output).

    scripts/image.py [--binary PATH] [--out DIR]

Writes DIR/weft-VERSION-image.tar (default DIR: target/image) and a .sha256 beside it, and prints
the archive's path. The image holds /opt/bin/weft and one relative symlink per applet beside it
(/opt/bin/flanneld, /opt/bin/bridge, ...), and an empty /tmp; entrypoint /opt/bin/weft, command
--version, tag weft:VERSION.

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) and, in the same
tar, docker's manifest.json and repositories, so both `docker load -i` and `ctr images import`
take it. Its one layer is an uncompressed tar, so the layer's digest is its diff ID and no
compressor's version can change the bytes.

Reproducible: the same binary gives the same bytes. Every entry of both tars has the mtime
SOURCE_DATE_EPOCH (default: the time of the last commit), owner 0:0 with no user or group names,
a fixed mode, and the entries are in byte order; the JSON documents are written with sorted keys.
"""

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


def die(msg):
    print(f"image.py: {msg}", file=sys.stderr)
    sys.exit(1)


def version_from_cargo():
    with open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8") as f:
        for line in f:
            m = re.fullmatch(r'version = "(.*)"\n?', line)
            if m:
                return m.group(1)
    die("no version in Cargo.toml")
    return None


def source_date_epoch():
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "log", "-1", "--format=%ct"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return int(out.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        die("not a git checkout: set SOURCE_DATE_EPOCH")
    return None


def run(binary, *args):
    try:
        return subprocess.run(
            [binary, *args], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die(f"{binary} {' '.join(args)}: {e}")
    return None


def entry(name, kind, mode, mtime, data=b"", target=""):
    """A tar header with nothing of this host in it."""
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.linkname = target
    return ti, data


def tar_bytes(entries):
    """A ustar archive of `entries`, in byte order of their names."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for ti, data in sorted(entries, key=lambda e: e[0].name.encode()):
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser(description="Build weft's OCI/docker image archive.")
    p.add_argument("--binary", default=os.path.join(ROOT, "target/static/weft"))
    p.add_argument("--out", default=os.path.join(ROOT, "target/image"))
    a = p.parse_args()

    if not os.access(a.binary, os.X_OK):
        die(f"{a.binary} missing: make static")
    version = version_from_cargo()
    line = run(a.binary, "--version").strip()
    m = re.fullmatch(r"weft (\S+) \(commit (\S+)\)", line)
    if not m or m.group(1) != version:
        die(f"{a.binary} says {line!r}, Cargo.toml says version {version}")
    commit = m.group(2)
    applets = run(a.binary, "--list").split()
    if not applets or any(not re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in applets):
        die(f"{a.binary} --list gave {applets!r}")
    epoch = source_date_epoch()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    with open(a.binary, "rb") as f:
        binary = f.read()

    # The root filesystem: the binary where upstream's image keeps flanneld, and its applets.
    layer = tar_bytes(
        [
            entry("opt", tarfile.DIRTYPE, 0o755, epoch),
            entry("opt/bin", tarfile.DIRTYPE, 0o755, epoch),
            entry("opt/bin/weft", tarfile.REGTYPE, 0o755, epoch, binary),
            entry("tmp", tarfile.DIRTYPE, 0o1777, epoch),
        ]
        + [
            entry(f"opt/bin/{n}", tarfile.SYMTYPE, 0o777, epoch, target="weft")
            for n in applets
        ]
    )
    layer_id = sha256(layer)
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "Entrypoint": ["/opt/bin/weft"],
                "Cmd": ["--version"],
                "Env": ["PATH=/opt/bin"],
                "Labels": {
                    "org.opencontainers.image.title": "weft",
                    "org.opencontainers.image.version": version,
                    "org.opencontainers.image.revision": commit,
                    "org.opencontainers.image.licenses": "Apache-2.0",
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
            "history": [
                {"created": created, "created_by": "scripts/image.py: the static weft binary"}
            ],
        }
    )
    config_id = sha256(config)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": f"sha256:{config_id}", "size": len(config)},
            "layers": [{"mediaType": MT_LAYER, "digest": f"sha256:{layer_id}", "size": len(layer)}],
        }
    )
    manifest_id = sha256(manifest)
    tag = f"weft:{version}"
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [
                {
                    "mediaType": MT_MANIFEST,
                    "digest": f"sha256:{manifest_id}",
                    "size": len(manifest),
                    "annotations": {
                        # containerd names the image by this; OCI tools by the ref name.
                        "io.containerd.image.name": f"docker.io/library/{tag}",
                        "org.opencontainers.image.ref.name": version,
                    },
                }
            ],
        }
    )
    docker_manifest = canonical(
        [
            {
                "Config": f"blobs/sha256/{config_id}",
                "RepoTags": [tag],
                "Layers": [f"blobs/sha256/{layer_id}"],
            }
        ]
    )
    repositories = canonical({"weft": {version: layer_id}})

    archive = tar_bytes(
        [
            entry("blobs", tarfile.DIRTYPE, 0o755, epoch),
            entry("blobs/sha256", tarfile.DIRTYPE, 0o755, epoch),
            entry(f"blobs/sha256/{layer_id}", tarfile.REGTYPE, 0o644, epoch, layer),
            entry(f"blobs/sha256/{config_id}", tarfile.REGTYPE, 0o644, epoch, config),
            entry(f"blobs/sha256/{manifest_id}", tarfile.REGTYPE, 0o644, epoch, manifest),
            entry("oci-layout", tarfile.REGTYPE, 0o644, epoch, canonical({"imageLayoutVersion": "1.0.0"})),
            entry("index.json", tarfile.REGTYPE, 0o644, epoch, index),
            entry("manifest.json", tarfile.REGTYPE, 0o644, epoch, docker_manifest),
            entry("repositories", tarfile.REGTYPE, 0o644, epoch, repositories),
        ]
    )

    os.makedirs(a.out, exist_ok=True)
    name = f"weft-{version}-image.tar"
    path = os.path.join(a.out, name)
    with open(path + ".new", "wb") as f:
        f.write(archive)
    os.chmod(path + ".new", 0o644)
    os.replace(path + ".new", path)
    with open(path + ".sha256.new", "w", encoding="utf-8") as f:
        f.write(f"{sha256(archive)}  {name}\n")
    os.replace(path + ".sha256.new", path + ".sha256")
    print(path)


if __name__ == "__main__":
    main()
