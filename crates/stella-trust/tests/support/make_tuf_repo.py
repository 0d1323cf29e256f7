#!/usr/bin/env python3
"""Builds and changes a TUF repository with python-tuf (PyPI `tuf`), an
implementation independent of the Rust client under test.

The repository is laid out like the Sigstore public-good one: consistent
snapshots (N.root.json, N.snapshot.json, N.targets.json), timestamp.json
unversioned, targets stored as targets/<sha256>.<name>. Keys are ECDSA
P-256 ("ecdsa" / "ecdsa-sha2-nistp256"), one per role, kept as PEM under
DIR/keys so later commands can sign again.

  make_tuf_repo.py init DIR --target FILE
      DIR/repo is the directory to serve; DIR/repo/1.root.json (also
      DIR/root.json) is the root to start from.
  make_tuf_repo.py publish DIR [--target FILE] [--expire ROLE]...
                     [--wrong-key ROLE]... [--timestamp-version N]
      New snapshot and timestamp (and targets when --target is given).
      --expire makes ROLE's new metadata already expired, --wrong-key signs
      it with a key the root does not list, --timestamp-version sets the
      new timestamp's version (e.g. lower than before: a rollback).
  make_tuf_repo.py rotate-root DIR
      Publishes root version N+1 (same keys), signed as TUF requires.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "targets", "snapshot", "timestamp")
TARGET_NAME = "trusted_root.json"
SERIALIZER = JSONSerializer(compact=False)


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def expiry(days):
    return now() + datetime.timedelta(days=days)


def signer_for(d, name):
    path = os.path.join(d, "keys", name + ".pem")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        with open(path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return CryptoSigner(key)


def repo_dir(d):
    return os.path.join(d, "repo")


def write(d, md, name):
    os.makedirs(repo_dir(d), exist_ok=True)
    md.to_file(os.path.join(repo_dir(d), name), SERIALIZER)


def load(d, name):
    return Metadata.from_file(os.path.join(repo_dir(d), name))


def state(d):
    with open(os.path.join(d, "state.json")) as f:
        return json.load(f)


def save_state(d, st):
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump(st, f)


def sign(d, md, role, wrong):
    md.signatures.clear()
    md.sign(signer_for(d, "wrong" if role in wrong else role))


def add_target(d, path, version, expired, wrong):
    with open(path, "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    tdir = os.path.join(repo_dir(d), "targets")
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(tdir, sha + "." + TARGET_NAME), "wb") as f:
        f.write(data)
    targets = Targets(version=version, expires=expiry(-1 if "targets" in expired else 30))
    targets.targets[TARGET_NAME] = TargetFile(
        length=len(data), hashes={"sha256": sha}, path=TARGET_NAME
    )
    md = Metadata(targets)
    sign(d, md, "targets", wrong)
    write(d, md, "%d.targets.json" % version)


def publish_snapshot_and_timestamp(d, st, expired, wrong, ts_version):
    st["snapshot"] += 1
    snap = Snapshot(
        version=st["snapshot"], expires=expiry(-1 if "snapshot" in expired else 7)
    )
    snap.meta["targets.json"] = MetaFile(version=st["targets"])
    md = Metadata(snap)
    sign(d, md, "snapshot", wrong)
    write(d, md, "%d.snapshot.json" % st["snapshot"])

    st["timestamp"] = ts_version if ts_version is not None else st["timestamp"] + 1
    ts = Timestamp(
        version=st["timestamp"],
        expires=expiry(-1 if "timestamp" in expired else 1),
        snapshot_meta=MetaFile(version=st["snapshot"]),
    )
    md = Metadata(ts)
    sign(d, md, "timestamp", wrong)
    write(d, md, "timestamp.json")


def cmd_init(a):
    d = a.dir
    root = Root(expires=expiry(365), consistent_snapshot=True)
    for role in ROLES:
        root.add_key(signer_for(d, role).public_key, role)
    md = Metadata(root)
    md.sign(signer_for(d, "root"))
    write(d, md, "1.root.json")
    md.to_file(os.path.join(d, "root.json"), SERIALIZER)
    signer_for(d, "wrong")
    st = {"root": 1, "targets": 1, "snapshot": 0, "timestamp": 0}
    add_target(d, a.target, 1, (), ())
    publish_snapshot_and_timestamp(d, st, (), (), None)
    save_state(d, st)


def cmd_publish(a):
    d = a.dir
    st = state(d)
    expired, wrong = set(a.expire or ()), set(a.wrong_key or ())
    if a.target:
        st["targets"] += 1
        add_target(d, a.target, st["targets"], expired, wrong)
    publish_snapshot_and_timestamp(d, st, expired, wrong, a.timestamp_version)
    save_state(d, st)


def cmd_rotate_root(a):
    d = a.dir
    st = state(d)
    md = load(d, "%d.root.json" % st["root"])
    st["root"] += 1
    md.signed.version = st["root"]
    md.signed.expires = expiry(365)
    md.signatures.clear()
    md.sign(signer_for(d, "root"))
    write(d, md, "%d.root.json" % st["root"])
    save_state(d, st)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init")
    i.add_argument("dir")
    i.add_argument("--target", required=True)
    u = sub.add_parser("publish")
    u.add_argument("dir")
    u.add_argument("--target")
    u.add_argument("--expire", action="append", choices=ROLES[1:])
    u.add_argument("--wrong-key", action="append", choices=ROLES[1:])
    u.add_argument("--timestamp-version", type=int)
    r = sub.add_parser("rotate-root")
    r.add_argument("dir")
    a = p.parse_args()
    {"init": cmd_init, "publish": cmd_publish, "rotate-root": cmd_rotate_root}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
