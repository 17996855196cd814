"""os-vif plugin "ptnetmap": plugs a VIF by asking ptnetd for a VM attachment.

The VIF object is os-vif's VIFVHostUser (see plugins/README.md for why): its
``path`` is the ivshmem-doorbell socket ptnetd serves for the VM and QEMU
connects to (``mode`` client), and ``network.bridge`` names the VALE switch
of the VM's private port. No privilege is needed: the plugin only talks to
ptnetd's API socket, which members of ptnetd's socket group may use, so
there is no privsep context.
"""

import grpc
from oslo_config import cfg
from oslo_log import log as logging

from os_vif import exception as osv_exception
from os_vif import objects
from os_vif import plugin

from vif_plug_ptnetmap import api

LOG = logging.getLogger(__name__)

PLUGIN_NAME = "ptnetmap"

# ptnetd's default API socket (agent/ptnetd_main.cc, --socket).
DEFAULT_SOCKET = "/run/ptnetmap/ptnetd.sock"
# Longest VmAttachment.name the agent accepts.
MAX_NAME = 31


def attachment_name(vif):
    """The agent-side attachment name of a VIF: "pt" and 29 hex digits of
    the port id, deterministic so that plug, unplug and Nova agree."""
    return ("pt" + str(vif.id).replace("-", ""))[:MAX_NAME]


class PtnetmapPlugin(plugin.PluginBase):
    """Creates and deletes ptnetd VM attachments for VIFVHostUser VIFs."""

    CONFIG_OPTS = (
        cfg.StrOpt("agent_socket", default=DEFAULT_SOCKET,
                   help="UNIX socket of ptnetd's gRPC API (ptnetd --socket). "
                        "The user nova-compute runs as must be in the "
                        "socket's group (ptnetd --socket_group)."),
        cfg.StrOpt("default_trust", default="untrusted",
                   choices=["untrusted"],
                   help="Trust policy of the attachments this plugin "
                        "creates. Only 'untrusted' (a private VALE port) "
                        "is possible through os-vif: a trusted attachment "
                        "needs a pipe and peer names that os-vif's VIF "
                        "objects cannot carry; create those with ptctl."),
        cfg.StrOpt("default_switch", default="vale0",
                   help="VALE switch used when the VIF's network names no "
                        "bridge."),
        cfg.FloatOpt("timeout", default=10.0, min=0.1,
                     help="Seconds to wait for each call to ptnetd."),
        cfg.IntOpt("rings", default=0, min=0, max=16,
                   help="Rings per direction of each attachment; 0 lets "
                        "ptnetd choose (1)."),
        cfg.IntOpt("region_bytes", default=0, min=0,
                   help="Shared memory size of each attachment, a power of "
                        "two from 1 MiB to 1 GiB; 0 lets ptnetd choose "
                        "(4 MiB)."),
    )

    def __init__(self, config):
        super().__init__(config)
        self._pb2 = self._pb2_grpc = None

    def describe(self):
        return objects.host_info.HostPluginInfo(
            plugin_name=PLUGIN_NAME,
            vif_info=[objects.host_info.HostVIFInfo(
                vif_object_name=objects.vif.VIFVHostUser.__name__,
                min_version="1.0",
                max_version=objects.vif.VIFVHostUser.VERSION)])

    # -- helpers ------------------------------------------------------------

    def _stubs(self, vif, exc):
        if self._pb2 is None:
            try:
                self._pb2, self._pb2_grpc = api.load()
            except ImportError as e:
                raise exc(vif=vif, err="the ptnetd API stubs are not "
                          "installed (%s); generate them with "
                          "gen_stubs.py" % e)
        return self._pb2, self._pb2_grpc

    def _call(self, vif, exc, method, request):
        """Calls one RPC; returns (reply, None) or (None, grpc.RpcError)."""
        _, pb2_grpc = self._stubs(vif, exc)
        target = "unix:" + self.config.agent_socket
        with grpc.insecure_channel(target) as channel:
            stub = pb2_grpc.PtnetmapStub(channel)
            try:
                return getattr(stub, method)(
                    request, timeout=self.config.timeout), None
            except grpc.RpcError as e:
                return None, e

    def _fail(self, vif, exc, what, err):
        code = err.code()
        msg = "ptnetd %s: %s: %s" % (what, code.name, err.details())
        if code in (grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED) and \
                "netmap" not in (err.details() or ""):
            msg += (" (is ptnetd running with --socket=%s, and is this "
                    "user in its --socket_group?)" % self.config.agent_socket)
        raise exc(vif=vif, err=msg)

    def _request(self, vif, name):
        pb2, _ = self._stubs(vif, osv_exception.PlugException)
        switch = None
        if "network" in vif and vif.network and \
                vif.network.obj_attr_is_set("bridge"):
            switch = vif.network.bridge
        switch = switch or self.config.default_switch
        return pb2.CreateVmAttachmentRequest(
            name=name, trust=pb2.TRUST_POLICY_UNTRUSTED, switch_name=switch,
            rings=self.config.rings, region_bytes=self.config.region_bytes)

    def _check_path(self, vif, att):
        want = vif.path if vif.obj_attr_is_set("path") else None
        if want and want != att.socket_path:
            raise osv_exception.PlugException(
                vif=vif, err="ptnetd serves attachment %s on %s but the VIF "
                "expects %s: set the VIF path from the port's vif_details "
                "socket directory, or start ptnetd with that --ivshmem_dir"
                % (att.name, att.socket_path, want))

    # -- os-vif API ---------------------------------------------------------

    def plug(self, vif, instance_info):
        if not isinstance(vif, objects.vif.VIFVHostUser):
            raise osv_exception.PlugException(
                vif=vif, err="unexpected VIF type %s" % type(vif).__name__)
        pb2, _ = self._stubs(vif, osv_exception.PlugException)
        name = attachment_name(vif)
        req = self._request(vif, name)
        att, err = self._call(vif, osv_exception.PlugException,
                              "CreateVmAttachment", req)
        if err is not None and err.code() == grpc.StatusCode.ALREADY_EXISTS:
            # A retried plug: fine if the existing attachment is the same.
            att, err2 = self._call(vif, osv_exception.PlugException,
                                   "GetVmAttachment",
                                   pb2.GetVmAttachmentRequest(name=name))
            if err2 is not None:
                self._fail(vif, osv_exception.PlugException,
                           "GetVmAttachment(%s)" % name, err2)
            if att.trust != req.trust or att.switch_name != req.switch_name:
                raise osv_exception.PlugException(
                    vif=vif, err="ptnetd already has attachment %s on switch "
                    "%r with trust %s, not on %r untrusted; remove it with "
                    "'ptctl vm detach %s' if it is stale"
                    % (name, att.switch_name,
                       pb2.TrustPolicy.Name(att.trust), req.switch_name,
                       name))
            LOG.debug("ptnetd attachment %s already exists", name)
        elif err is not None:
            self._fail(vif, osv_exception.PlugException,
                       "CreateVmAttachment(%s on %s)"
                       % (name, req.switch_name), err)
        self._check_path(vif, att)
        LOG.info("Plugged VIF %s of instance %s as ptnetd attachment %s "
                 "(%s, socket %s)", vif.id, instance_info.name, name,
                 att.netmap_name, att.socket_path)

    def unplug(self, vif, instance_info):
        pb2, _ = self._stubs(vif, osv_exception.UnplugException)
        name = attachment_name(vif)
        _, err = self._call(vif, osv_exception.UnplugException,
                            "DeleteVmAttachment",
                            pb2.DeleteVmAttachmentRequest(name=name))
        if err is not None and err.code() == grpc.StatusCode.NOT_FOUND:
            LOG.debug("ptnetd attachment %s already gone", name)
            return
        if err is not None:
            self._fail(vif, osv_exception.UnplugException,
                       "DeleteVmAttachment(%s)" % name, err)
        LOG.info("Unplugged VIF %s of instance %s (ptnetd attachment %s)",
                 vif.id, instance_info.name, name)
