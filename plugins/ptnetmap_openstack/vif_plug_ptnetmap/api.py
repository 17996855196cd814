"""Access to the generated gRPC stubs of api/ptnetmap/v1/ptnetmap.proto.

The stubs are not committed: gen_stubs.py writes them (package
``ptnetmap.v1``) into a directory that must be on sys.path, at build time
for an installation and at test time for the unit tests.
"""

import importlib


def load():
    """Returns (ptnetmap_pb2, ptnetmap_pb2_grpc) or raises ImportError."""
    pb2 = importlib.import_module("ptnetmap.v1.ptnetmap_pb2")
    pb2_grpc = importlib.import_module("ptnetmap.v1.ptnetmap_pb2_grpc")
    return pb2, pb2_grpc
