"""ML2 mechanism driver "ptnetmap": binds ports to hosts running ptnetd.

ptnetd does not report to Neutron's agent table, so Neutron cannot see
whether it is alive. The driver binds only on the hosts listed in
[ml2_ptnetmap] hosts (an empty list binds nothing) and only segments of the
configured network types; liveness is the operator's to monitor (ptnetd's
gRPC health service and its Prometheus metrics, docs/operator-guide.md). If
ptnetd is down on a bound host, os-vif's plug fails and Nova reports it.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

VIF_TYPE_PTNETMAP = "ptnetmap"
# vif_details keys.
VIF_DETAILS_SWITCH = "ptnetmap_switch"
VIF_DETAILS_TRUST = "ptnetmap_trust"
VIF_DETAILS_SOCKET_DIR = "ptnetmap_socket_dir"

OPTS = [
    cfg.ListOpt("hosts", default=[],
                help="Hosts (as Neutron knows them, the port's "
                     "binding:host_id) that run ptnetd. Ports are bound "
                     "only there: ptnetd does not register in Neutron's "
                     "agent table."),
    cfg.StrOpt("default_trust", default="untrusted",
               choices=["untrusted", "trusted"],
               help="Trust policy put in vif_details when the port's "
                    "binding profile does not ask for one."),
    cfg.StrOpt("switch", default="vale0",
               help="VALE switch the VMs' private ports go on."),
    cfg.StrOpt("socket_dir", default="/run/ptnetmap/ivshmem",
               help="Directory of ptnetd's ivshmem sockets on the hosts "
                    "(ptnetd --ivshmem_dir)."),
    cfg.ListOpt("network_types", default=[constants.TYPE_FLAT,
                                          constants.TYPE_LOCAL],
                help="Segment types the driver binds; a VALE switch has "
                     "no VLAN or tunnel support."),
]

cfg.CONF.register_opts(OPTS, "ml2_ptnetmap")


class PtnetmapMechanismDriver(api.MechanismDriver):
    """Binds normal-vnic ports on ptnetd hosts with vif_type "ptnetmap"."""

    def initialize(self):
        self.conf = cfg.CONF.ml2_ptnetmap
        LOG.info("ptnetmap mechanism driver: hosts %s, switch %s",
                 self.conf.hosts, self.conf.switch)

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def _trust(self, context):
        profile = context.current.get(portbindings.PROFILE) or {}
        trust = profile.get("ptnetmap_trust", self.conf.default_trust)
        if trust not in ("untrusted", "trusted"):
            LOG.warning("Port %s asks for ptnetmap_trust %r; expected "
                        "'untrusted' or 'trusted'; not binding",
                        context.current["id"], trust)
            return None
        return trust

    def bind_port(self, context):
        port = context.current
        vnic_type = port.get(portbindings.VNIC_TYPE, portbindings.VNIC_NORMAL)
        if vnic_type != portbindings.VNIC_NORMAL:
            return
        if context.host not in self.conf.hosts:
            LOG.debug("Not binding port %s: host %r is not in "
                      "[ml2_ptnetmap] hosts", port["id"], context.host)
            return
        trust = self._trust(context)
        if trust is None:
            return
        for segment in context.segments_to_bind:
            if segment[api.NETWORK_TYPE] not in self.conf.network_types:
                continue
            details = {
                VIF_DETAILS_SWITCH: self.conf.switch,
                VIF_DETAILS_TRUST: trust,
                VIF_DETAILS_SOCKET_DIR: self.conf.socket_dir,
                portbindings.CAP_PORT_FILTER: False,
            }
            context.set_binding(segment[api.ID], VIF_TYPE_PTNETMAP, details,
                                status=constants.PORT_STATUS_ACTIVE)
            LOG.debug("Bound port %s on host %s to segment %s",
                      port["id"], context.host, segment[api.ID])
            return
        LOG.debug("Not binding port %s: no segment of types %s",
                  port["id"], self.conf.network_types)


def list_opts():
    return [("ml2_ptnetmap", OPTS)]
