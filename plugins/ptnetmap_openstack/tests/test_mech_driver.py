"""Unit tests of the ML2 mechanism driver with Neutron's own fixtures."""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg

from neutron.tests.unit.plugins.ml2 import _test_mech_agent as base

from networking_ptnetmap import mech_driver

FLAT = {api.ID: "seg-flat", api.NETWORK_TYPE: constants.TYPE_FLAT,
        api.PHYSICAL_NETWORK: "physnet1", api.SEGMENTATION_ID: None}
VLAN = {api.ID: "seg-vlan", api.NETWORK_TYPE: constants.TYPE_VLAN,
        api.PHYSICAL_NETWORK: "physnet1", api.SEGMENTATION_ID: 100}


class PortContext(base.FakePortContext):
    """Neutron's fake port context, on a chosen host, recording status."""

    def __init__(self, host, segments, **kw):
        super().__init__(None, [], segments, **kw)
        self._host = host
        self._bound_status = None

    @property
    def host(self):
        return self._host

    def set_binding(self, segment_id, vif_type, vif_details, status=None):
        super().set_binding(segment_id, vif_type, vif_details)
        self._bound_status = status


class PtnetmapMechanismDriverTest(base.AgentMechanismBaseTestCase):

    def setUp(self):
        super().setUp()
        cfg.CONF.set_override("hosts", ["compute1", "compute2"],
                              "ml2_ptnetmap")
        self.driver = mech_driver.PtnetmapMechanismDriver()
        self.driver.initialize()

    def test_binds_flat_segment_on_listed_host(self):
        ctx = PortContext("compute2", [VLAN, FLAT])
        self.driver.bind_port(ctx)
        self.assertEqual("seg-flat", ctx._bound_segment_id)
        self.assertEqual("ptnetmap", ctx._bound_vif_type)
        self.assertEqual(constants.PORT_STATUS_ACTIVE, ctx._bound_status)
        self.assertEqual({"ptnetmap_switch": "vale0",
                          "ptnetmap_trust": "untrusted",
                          "ptnetmap_socket_dir": "/run/ptnetmap/ivshmem",
                          portbindings.CAP_PORT_FILTER: False},
                         ctx._bound_vif_details)

    def test_details_follow_config(self):
        cfg.CONF.set_override("default_trust", "trusted", "ml2_ptnetmap")
        cfg.CONF.set_override("switch", "vale5", "ml2_ptnetmap")
        cfg.CONF.set_override("socket_dir", "/srv/ivshmem", "ml2_ptnetmap")
        ctx = PortContext("compute1", [FLAT])
        self.driver.bind_port(ctx)
        details = ctx._bound_vif_details
        self.assertEqual("trusted", details["ptnetmap_trust"])
        self.assertEqual("vale5", details["ptnetmap_switch"])
        self.assertEqual("/srv/ivshmem", details["ptnetmap_socket_dir"])

    def test_profile_trust_overrides_default(self):
        ctx = PortContext("compute1", [FLAT],
                          profile={"ptnetmap_trust": "trusted"})
        self.driver.bind_port(ctx)
        self.assertEqual("trusted", ctx._bound_vif_details["ptnetmap_trust"])

    def test_bad_profile_trust_is_not_bound(self):
        ctx = PortContext("compute1", [FLAT],
                          profile={"ptnetmap_trust": "sometimes"})
        self.driver.bind_port(ctx)
        self._check_unbound(ctx)

    def test_unlisted_host_is_not_bound(self):
        ctx = PortContext("compute9", [FLAT])
        self.driver.bind_port(ctx)
        self._check_unbound(ctx)

    def test_no_hosts_configured_binds_nothing(self):
        cfg.CONF.set_override("hosts", [], "ml2_ptnetmap")
        ctx = PortContext("compute1", [FLAT])
        self.driver.bind_port(ctx)
        self._check_unbound(ctx)

    def test_unsupported_segment_is_not_bound(self):
        ctx = PortContext("compute1", [VLAN])
        self.driver.bind_port(ctx)
        self._check_unbound(ctx)

    def test_direct_vnic_is_not_bound(self):
        ctx = PortContext("compute1", [FLAT],
                          vnic_type=portbindings.VNIC_DIRECT)
        self.driver.bind_port(ctx)
        self._check_unbound(ctx)

    def test_connectivity_is_l2(self):
        self.assertEqual(portbindings.CONNECTIVITY_L2,
                         self.driver.connectivity)
