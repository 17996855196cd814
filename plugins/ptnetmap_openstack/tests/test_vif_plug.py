"""Unit tests of the os-vif plugin against a fake in-process ptnetd."""

import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import zipfile

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import os_vif
from os_vif import exception as osv_exception
from os_vif import objects
from os_vif.tests.unit import base
from stevedore import extension

from tests import fake_ptnetd
from vif_plug_ptnetmap import ptnetmap

pb2 = fake_ptnetd.pb2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(ROOT))
GROUP = "os_vif_ptnetmap"


class PtnetmapPluginTest(base.TestCase):

    def setUp(self):
        super().setUp()
        objects.register_all()
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF))
        self.plugin = ptnetmap.PtnetmapPlugin.load("ptnetmap")
        self.agent = fake_ptnetd.Server()
        self.addCleanup(self.agent.stop)
        self.fake = self.agent.service
        self.conf.config(group=GROUP, agent_socket=self.agent.socket,
                         timeout=5)
        self.port_id = "6c9d1f0e-8a1b-4c56-9e2f-0123456789ab"
        self.instance = objects.instance_info.InstanceInfo(
            uuid=str(uuid.uuid4()), name="vm1")

    def vif(self, bridge="vale0", **kw):
        network = objects.network.Network(id=str(uuid.uuid4()))
        if bridge is not None:
            network.bridge = bridge
        return objects.vif.VIFVHostUser(
            id=self.port_id, address="fa:16:3e:00:00:01", network=network,
            plugin="ptnetmap", vif_name="ptn6c9d1f0e-8a", mode="client", **kw)

    def methods(self):
        return [m for m, _ in self.fake.requests]

    def test_describe_names_vhostuser(self):
        info = self.plugin.describe()
        self.assertEqual("ptnetmap", info.plugin_name)
        self.assertEqual(1, len(info.vif_info))
        vif_info = info.vif_info[0]
        self.assertEqual("VIFVHostUser", vif_info.vif_object_name)
        self.assertEqual(objects.vif.VIFVHostUser.VERSION,
                         vif_info.max_version)

    def test_attachment_name_fits_agent_rules(self):
        name = ptnetmap.attachment_name(self.vif())
        self.assertRegex(name, r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$")
        self.assertEqual("pt6c9d1f0e8a1b4c569e2f012345678", name)

    def test_plug_creates_untrusted_attachment_on_bridge(self):
        self.fake.switches.add("vale7")
        self.plugin.plug(self.vif(bridge="vale7"), self.instance)
        self.assertEqual(["CreateVmAttachment"], self.methods())
        req = self.fake.requests[0][1]
        self.assertEqual(ptnetmap.attachment_name(self.vif()), req.name)
        self.assertEqual(pb2.TRUST_POLICY_UNTRUSTED, req.trust)
        self.assertEqual("vale7", req.switch_name)
        self.assertEqual("", req.pipe_name)
        self.assertEqual([], list(req.peers))
        self.assertIn(req.name, self.fake.attachments)

    def test_plug_uses_default_switch_and_sizes_from_config(self):
        self.fake.switches.add("vale3")
        self.conf.config(group=GROUP, default_switch="vale3", rings=2,
                         region_bytes=8 << 20)
        self.plugin.plug(self.vif(bridge=None), self.instance)
        req = self.fake.requests[0][1]
        self.assertEqual("vale3", req.switch_name)
        self.assertEqual(2, req.rings)
        self.assertEqual(8 << 20, req.region_bytes)

    def test_plug_is_idempotent(self):
        vif = self.vif()
        self.plugin.plug(vif, self.instance)
        self.plugin.plug(vif, self.instance)
        self.assertEqual(["CreateVmAttachment", "CreateVmAttachment",
                          "GetVmAttachment"], self.methods())
        self.assertEqual(1, len(self.fake.attachments))

    def test_plug_refuses_different_existing_attachment(self):
        self.fake.switches.add("vale9")
        self.plugin.plug(self.vif(bridge="vale9"), self.instance)
        e = self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                              self.vif(bridge="vale0"), self.instance)
        self.assertIn("already has attachment", str(e))
        self.assertIn("ptctl vm detach", str(e))
        # The existing attachment is left alone.
        name = ptnetmap.attachment_name(self.vif())
        self.assertEqual("vale9", self.fake.attachments[name].switch_name)

    def test_plug_checks_socket_path(self):
        vif = self.vif(path="/run/ptnetmap/ivshmem/"
                       + ptnetmap.attachment_name(self.vif()))
        self.plugin.plug(vif, self.instance)
        vif = self.vif(path="/elsewhere/sock")
        e = self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                              vif, self.instance)
        self.assertIn("/elsewhere/sock", str(e))
        self.assertIn("--ivshmem_dir", str(e))

    def test_plug_reports_agent_error(self):
        e = self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                              self.vif(bridge="valeX"), self.instance)
        self.assertIn("NOT_FOUND", str(e))
        self.assertIn("no switch valeX", str(e))
        self.assertIn(self.port_id, str(e))
        self.assertEqual({}, self.fake.attachments)

    def test_plug_reports_unimplemented(self):
        self.fake.fail = (fake_ptnetd.grpc.StatusCode.UNIMPLEMENTED,
                          "load ptnetmap.ko with passthrough support")
        e = self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                              self.vif(), self.instance)
        self.assertIn("UNIMPLEMENTED: load ptnetmap.ko", str(e))

    def test_plug_without_agent_fails_quickly(self):
        self.conf.config(group=GROUP, timeout=1,
                         agent_socket=self.agent.socket + ".missing")
        start = time.monotonic()
        e = self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                              self.vif(), self.instance)
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("is ptnetd running", str(e))
        self.assertIn(".missing", str(e))

    def test_plug_rejects_other_vif_types(self):
        vif = objects.vif.VIFGeneric(id=self.port_id, plugin="ptnetmap")
        self.assertRaises(osv_exception.PlugException, self.plugin.plug,
                          vif, self.instance)
        self.assertEqual([], self.fake.requests)

    def test_unplug_deletes_and_tolerates_missing(self):
        vif = self.vif()
        self.plugin.plug(vif, self.instance)
        self.plugin.unplug(vif, self.instance)
        self.assertEqual({}, self.fake.attachments)
        self.plugin.unplug(vif, self.instance)
        self.assertEqual(["CreateVmAttachment", "DeleteVmAttachment",
                          "DeleteVmAttachment"], self.methods())
        self.assertEqual(ptnetmap.attachment_name(vif),
                         self.fake.requests[-1][1].name)

    def test_unplug_reports_agent_error(self):
        self.fake.fail = (fake_ptnetd.grpc.StatusCode.INTERNAL,
                          "cannot write the database: disk full")
        e = self.assertRaises(osv_exception.UnplugException,
                              self.plugin.unplug, self.vif(), self.instance)
        self.assertIn("INTERNAL: cannot write the database", str(e))

    def test_through_os_vif_api(self):
        # os_vif.plug looks the plugin up by vif.plugin among the loaded
        # plugins (normally found through the "os_vif" entry points).
        ext = extension.Extension("ptnetmap", None, ptnetmap.PtnetmapPlugin,
                                  self.plugin)
        mgr = extension.ExtensionManager.make_test_instance([ext])
        self.useFixture(fixtures.MockPatchObject(os_vif, "_EXT_MANAGER", mgr))
        os_vif.plug(self.vif(), self.instance)
        self.assertEqual(1, len(self.fake.attachments))
        os_vif.unplug(self.vif(), self.instance)
        self.assertEqual({}, self.fake.attachments)


class PackagingTest(base.TestCase):

    def test_entry_point_names_the_plugin(self):
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            meta = tomllib.load(f)
        eps = meta["project"]["entry-points"]
        target = eps["os_vif"]["ptnetmap"]
        module, _, attr = target.partition(":")
        mod = __import__(module, fromlist=[attr])
        self.assertIs(ptnetmap.PtnetmapPlugin, getattr(mod, attr))
        target = eps["neutron.ml2.mechanism_drivers"]["ptnetmap"]
        module, _, attr = target.partition(":")
        mod = __import__(module, fromlist=[attr])
        self.assertTrue(callable(getattr(mod, attr)))

    def test_default_socket_matches_ptnetd(self):
        with open(os.path.join(REPO, "agent", "ptnetd_main.cc")) as f:
            src = f.read()
        m = re.search(r'ABSL_FLAG\(std::string, socket, "([^"]*)"', src)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1), ptnetmap.DEFAULT_SOCKET)

    def test_wheel_carries_packages_and_entry_points(self):
        # Built the way pip or pybuild would, with Debian's setuptools (PEP
        # 517 backend), in a copy so the source tree stays clean.
        tmp = tempfile.mkdtemp(prefix="ptnetmap-wheel-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src = os.path.join(tmp, "src")
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            "__pycache__", "*.egg-info", "build"))
        out = os.path.join(tmp, "dist")
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from setuptools import build_meta as b; "
             "print(b.build_wheel(sys.argv[1]))", out],
            cwd=src, check=True, capture_output=True, timeout=120)
        wheels = os.listdir(out)
        self.assertEqual(["ptnetmap_openstack-0.1.0-py3-none-any.whl"],
                         wheels)
        with zipfile.ZipFile(os.path.join(out, wheels[0])) as whl:
            names = whl.namelist()
            eps = configparser.ConfigParser()
            eps.read_string(whl.read(
                "ptnetmap_openstack-0.1.0.dist-info/entry_points.txt")
                .decode())
        for module in ("vif_plug_ptnetmap/ptnetmap.py",
                       "vif_plug_ptnetmap/api.py",
                       "networking_ptnetmap/mech_driver.py"):
            self.assertIn(module, names)
        self.assertFalse([n for n in names if n.startswith("tests/")])
        self.assertEqual("vif_plug_ptnetmap.ptnetmap:PtnetmapPlugin",
                         eps["os_vif"]["ptnetmap"])
        self.assertEqual(
            "networking_ptnetmap.mech_driver:PtnetmapMechanismDriver",
            eps["neutron.ml2.mechanism_drivers"]["ptnetmap"])
