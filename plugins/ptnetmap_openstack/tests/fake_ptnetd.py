"""An in-process fake of ptnetd's gRPC service for the plugin tests.

The stubs are generated from api/ptnetmap/v1/ptnetmap.proto into a temporary
directory the first time this module is imported (gen_stubs.py).
"""

import atexit
import os
import shutil
import sys
import tempfile
import threading
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import gen_stubs  # noqa: E402

_STUBS = tempfile.mkdtemp(prefix="ptnetmap-stubs-")
atexit.register(shutil.rmtree, _STUBS, True)
gen_stubs.generate(_STUBS)
sys.path.insert(0, _STUBS)

from ptnetmap.v1 import ptnetmap_pb2 as pb2  # noqa: E402
from ptnetmap.v1 import ptnetmap_pb2_grpc as pb2_grpc  # noqa: E402


class FakePtnetd(pb2_grpc.PtnetmapServicer):
    """Keeps VM attachments in a dict and follows the API's error rules
    for them; `fail` forces one status on every call."""

    def __init__(self, ivshmem_dir="/run/ptnetmap/ivshmem"):
        self.ivshmem_dir = ivshmem_dir
        self.switches = {"vale0"}
        self.attachments = {}
        self.requests = []  # (method name, request)
        self.fail = None  # (grpc.StatusCode, details)
        self.lock = threading.Lock()

    def _enter(self, method, request, context):
        with self.lock:
            self.requests.append((method, request))
        if self.fail:
            context.abort(*self.fail)

    def CreateVmAttachment(self, request, context):
        self._enter("CreateVmAttachment", request, context)
        if request.trust == pb2.TRUST_POLICY_UNSPECIFIED:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "trust is unspecified")
        if request.switch_name not in self.switches:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          "no switch %s" % request.switch_name)
        if request.name in self.attachments:
            context.abort(grpc.StatusCode.ALREADY_EXISTS,
                          "attachment %s exists" % request.name)
        rings = request.rings or 1
        att = pb2.VmAttachment(
            name=request.name, trust=request.trust,
            switch_name=request.switch_name, rings=rings,
            vectors=1 + 2 * rings,
            region_bytes=request.region_bytes or 4 << 20, peer_id=1,
            netmap_name="%s:%s" % (request.switch_name, request.name),
            socket_path=os.path.join(self.ivshmem_dir, request.name))
        self.attachments[request.name] = att
        return att

    def GetVmAttachment(self, request, context):
        self._enter("GetVmAttachment", request, context)
        if request.name not in self.attachments:
            context.abort(grpc.StatusCode.NOT_FOUND, "no attachment")
        return self.attachments[request.name]

    def DeleteVmAttachment(self, request, context):
        self._enter("DeleteVmAttachment", request, context)
        if self.attachments.pop(request.name, None) is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          "no attachment %s" % request.name)
        return pb2.DeleteVmAttachmentResponse()


class Server:
    """Serves a FakePtnetd on a UNIX socket in a fresh temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fake-ptnetd-")
        self.socket = os.path.join(self.dir, "ptnetd.sock")
        self.service = FakePtnetd()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb2_grpc.add_PtnetmapServicer_to_server(self.service, self.server)
        self.server.add_insecure_port("unix:" + self.socket)
        self.server.start()

    def stop(self):
        self.server.stop(None).wait()
        shutil.rmtree(self.dir, True)
