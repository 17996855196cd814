#!/usr/bin/env python3
"""Generates the Python gRPC stubs of the ptnetd API with grpc_tools.

Usage: gen_stubs.py OUTDIR [PROTO_ROOT]
Writes OUTDIR/ptnetmap/v1/ptnetmap_pb2.py and ptnetmap_pb2_grpc.py from
PROTO_ROOT/ptnetmap/v1/ptnetmap.proto (PROTO_ROOT defaults to the
repository's api/ directory). Put OUTDIR on sys.path to import them.
"""

import os
import sys

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "api"))
PROTO = os.path.join("ptnetmap", "v1", "ptnetmap.proto")


def generate(outdir, proto_root=DEFAULT_ROOT):
    os.makedirs(outdir, exist_ok=True)
    rc = protoc.main(["grpc_tools.protoc", "-I" + proto_root,
                      "--python_out=" + outdir, "--grpc_python_out=" + outdir,
                      os.path.join(proto_root, PROTO)])
    if rc != 0:
        raise RuntimeError("protoc failed on %s (exit %d)"
                           % (os.path.join(proto_root, PROTO), rc))
    return outdir


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    generate(*sys.argv[1:])
