#!/usr/bin/env python3
"""plugins.vif_functional: os-vif plugs ptnetmap VIFs through the real ptnetd.

Runs inside the lab VM (tests/lab/lab.py), ptnetmap.ko loaded, as root, with
Debian's python3-os-vif:

  1. ptnetd --datapath=kernel starts in /tmp; ptctl creates switch valeO.
  2. os_vif.initialize() finds the plugin "ptnetmap" through its entry point
     (stevedore, namespace os_vif): the package is not installed, so this
     script puts it on sys.path with a dist-info made from pyproject.toml.
  3. Untrusted VIF through os_vif.plug(): ptnetd has the attachment (ptctl vm
     get), the kernel has it (PTNETMAP_REQ_PT_INFO: one private peer on
     valeO:NAME) and the VALE port (VALE_LIST); its socket greets a client as
     QEMU's ivshmem-doorbell expects. A second plug changes nothing.
     os_vif.unplug() removes the attachment, the port and the socket; a
     second unplug is not an error.
  4. With --nova-vifs, the same with what the patched Nova made of a ptnetmap
     port (as Neutron's ML2 driver binds it) on the host before the lab
     (--write-nova-vifs, python3-nova patched by plugins/nova/check_patch.sh
     --prepare): the os-vif object LibvirtGenericVIFDriver.plug hands to
     os_vif.plug is plugged and unplugged; the <shmem> device get_config
     wrote equals the one ptnetd reports (libvirt_xml); Nova refused a
     trusted port with a clear error.
  5. With ptnetd stopped, a plug fails with os-vif's PlugException naming
     the socket.

Trusted (pipe) attachments cannot be plugged through os-vif (see
plugins/README.md), so step 4 checks that Nova refuses them. Every check
prints one line; the exit status is 1 if any failed.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tomllib
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(os.path.dirname(HERE))  # plugins/ptnetmap_openstack
REPO = os.path.dirname(os.path.dirname(PKG))
sys.path.insert(0, os.path.join(REPO, "tests", "agent"))
import agent_lab_test as lab  # noqa: E402  (Agent, kernel_ports)
import agent_vm_lab_test as vmlab  # noqa: E402  (pt_info, pt_names, QemuClient, cleanup)
import steps  # noqa: E402  (tests/lib, on the path through agent_lab_test)
from steps import check, log  # noqa: E402

lab.WORK = "/tmp/viflab"
lab.METRICS = "127.0.0.1:9613"

SWITCH = "valeO"
PTNM_MAGIC = 0x4d4e5450


def make_importable(work):
    """Puts the plugin package, its gRPC stubs and a dist-info carrying its
    entry points on sys.path, as an installation would."""
    sys.path.insert(0, PKG)
    import gen_stubs
    stubs = gen_stubs.generate(os.path.join(work, "stubs"))
    sys.path.insert(0, stubs)
    with open(os.path.join(PKG, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    site = os.path.join(work, "site")
    dist = os.path.join(site, "%s-%s.dist-info" % (
        project["name"].replace("-", "_"), project["version"]))
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
                % (project["name"], project["version"]))
    with open(os.path.join(dist, "entry_points.txt"), "w") as f:
        for group, eps in project["entry-points"].items():
            f.write("[%s]\n" % group)
            f.writelines("%s = %s\n" % kv for kv in eps.items())
            f.write("\n")
    sys.path.insert(0, site)
    # stevedore caches entry points under XDG_CACHE_HOME (the host's home is
    # read-only in the lab).
    os.environ["XDG_CACHE_HOME"] = os.path.join(work, "cache")


def attachment_names(agent):
    return sorted(v.get("name") for v in
                  agent.json("vm", "list").get("vm_attachments", []))


def kernel_has(name):
    info = vmlab.pt_info(name, 1)
    return (info is not None and info.num_peers == 1
            and info.port.decode() == f"{SWITCH}:{name}"
            and f"{SWITCH}:{name}" in lab.kernel_ports())


def kernel_clean(name):
    return (vmlab.pt_info(name) is None
            and f"{SWITCH}:{name}" not in lab.kernel_ports())


def check_plugged(agent, name, path, what):
    att = agent.json("vm", "get", name)
    check(att.get("switch_name") == SWITCH and att.get("socket_path") == path
          and "UNTRUSTED" in str(att.get("trust", "")),
          f"{what}: ptnetd has untrusted attachment {name} on {SWITCH}, "
          "socket as the VIF says", att)
    check(kernel_has(name),
          f"{what}: the kernel has attachment {name} (one private peer, "
          f"port {SWITCH}:{name}) and VALE_LIST shows the port",
          (vmlab.pt_info(name, 1), lab.kernel_ports()))
    try:
        c = vmlab.QemuClient(path, 3)
    except (OSError, ValueError) as e:
        check(False, f"{what}: the socket greets QEMU", f"{path}: {e}")
        return att
    check(c.ok and c.version == 0 and c.peer_id == 1
          and c.magic() == PTNM_MAGIC,
          f"{what}: the socket greets QEMU: version 0, peer 1, memory with "
          "PTNM_MAGIC, 3+3 eventfds",
          f"version {c.version}, peer {c.peer_id}, complete {c.ok}")
    c.close()
    return att


def check_unplugged(agent, name, path, what):
    check(kernel_clean(name) and not os.path.exists(path)
          and name not in attachment_names(agent),
          f"{what}: attachment {name}, its port and its socket are gone",
          (vmlab.pt_names(), lab.kernel_ports(), os.path.exists(path)))


def through_os_vif(agent, os_vif, objects, osv_exception):
    port_id = str(uuid.uuid4())
    from vif_plug_ptnetmap import ptnetmap
    name = ptnetmap.attachment_name(objects.vif.VIFVHostUser(id=port_id))
    path = f"{lab.WORK}/ivshmem/{name}.sock"
    network = objects.network.Network(id=str(uuid.uuid4()), bridge=SWITCH)
    vif = objects.vif.VIFVHostUser(
        id=port_id, address="fa:16:3e:00:00:01", network=network,
        plugin="ptnetmap", vif_name="tap" + port_id[:11], mode="client",
        path=path)
    inst = objects.instance_info.InstanceInfo(uuid=str(uuid.uuid4()),
                                              name="vm-os-vif")
    os_vif.plug(vif, inst)
    check_plugged(agent, name, path, "os_vif.plug")
    try:
        os_vif.plug(vif, inst)
        again = True
    except osv_exception.ExceptionBase as e:
        again = e
    check(again is True and attachment_names(agent) == [name]
          and kernel_has(name),
          "a second os_vif.plug of the same VIF succeeds and changes nothing",
          again)
    os_vif.unplug(vif, inst)
    check_unplugged(agent, name, path, "os_vif.unplug")
    try:
        os_vif.unplug(vif, inst)
        again = True
    except osv_exception.ExceptionBase as e:
        again = e
    check(again is True, "a second os_vif.unplug is not an error", again)
    return vif, inst


def normalized(xml):
    """An element as (tag, attributes, children), recursively."""
    from lxml import etree
    el = etree.fromstring(xml) if isinstance(xml, str) else xml
    return (el.tag, dict(el.attrib), [normalized(c) for c in el])


def write_nova_vifs(nova_dir, out):
    """On the host, before the lab: what the patched Nova makes of a ptnetmap
    port (Neutron's binding, socket directory in the lab's ptnetd): the
    os-vif object LibvirtGenericVIFDriver.plug hands to os_vif.plug, and
    the guest device get_config writes. Nova is not imported in the lab VM:
    its 2,000 modules take longer to load under TCG than the whole test."""
    sys.path.insert(0, nova_dir)
    from nova.network import model as network_model
    from nova.network import os_vif_util
    from nova import objects as nova_objects
    from nova.virt.libvirt import vif as libvirt_vif
    import nova.network
    import json
    from os_vif import objects as osv_objects
    assert nova.network.__file__.startswith(nova_dir), nova.network.__file__
    nova_objects.register_all()
    osv_objects.register_all()  # as os_vif.initialize() in nova-compute

    def nova_vif(trust):
        port_id = str(uuid.uuid4())
        return network_model.VIF(
            id=port_id, address="fa:16:3e:00:00:02", active=True,
            type=network_model.VIF_TYPE_PTNETMAP,
            devname="tap" + port_id[:11],
            vnic_type=network_model.VNIC_TYPE_NORMAL,
            network=network_model.Network(id=str(uuid.uuid4()), bridge=None,
                                          label="net", subnets=[]),
            details={network_model.VIF_DETAILS_PTNETMAP_SWITCH: SWITCH,
                     network_model.VIF_DETAILS_PTNETMAP_TRUST: trust,
                     network_model.VIF_DETAILS_PTNETMAP_SOCKET_DIR:
                         f"{lab.WORK}/ivshmem",
                     network_model.VIF_DETAILS_PORT_FILTER: False})

    instance = nova_objects.Instance(
        id=1, uuid=str(uuid.uuid4()), project_id="demo")
    driver = libvirt_vif.LibvirtGenericVIFDriver()
    vif = nova_vif("untrusted")
    image_meta = nova_objects.ImageMeta.from_dict({})
    result = {
        "nova": nova.network.__file__,
        "attachment": os_vif_util.get_ptnetmap_attachment_name(vif),
        "vif": os_vif_util.nova_to_osvif_vif(vif).obj_to_primitive(),
        "instance": os_vif_util.nova_to_osvif_instance(
            instance).obj_to_primitive(),
        "xml": driver.get_config(instance, vif, image_meta, None,
                                 "kvm").to_xml(),
    }
    try:
        driver.get_config(instance, nova_vif("trusted"), image_meta, None,
                          "kvm")
        result["trusted_error"] = None
    except Exception as e:  # noqa: BLE001 - what Nova raises is the point
        result["trusted_error"] = "%s: %s" % (type(e).__name__, e)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


def through_nova(agent, os_vif, objects, path):
    """The patched Nova's os-vif VIF and <shmem> device, made on the host
    (write_nova_vifs), against the real ptnetd."""
    import json
    with open(path) as f:
        made = json.load(f)
    log(f"Nova's output from {made['nova']}")
    vif = objects.vif.VIFVHostUser.obj_from_primitive(made["vif"])
    inst = objects.instance_info.InstanceInfo.obj_from_primitive(
        made["instance"])
    name = made["attachment"]
    check(vif.plugin == "ptnetmap" and vif.path.endswith(f"/{name}.sock"),
          "Nova makes an os-vif VIFVHostUser for plugin ptnetmap on the "
          "attachment's socket", vif)
    os_vif.plug(vif, inst)
    att = check_plugged(agent, name, vif.path, "Nova's VIF through os_vif.plug")
    check(normalized(made["xml"]) == normalized(att.get("libvirt_xml",
                                                        "<none/>")),
          "Nova's <shmem> device equals the one ptnetd reports (libvirt_xml)",
          f"Nova: {made['xml']} ptnetd: {att.get('libvirt_xml')}")
    os_vif.unplug(vif, inst)
    check_unplugged(agent, name, vif.path, "Nova's VIF through os_vif.unplug")
    err = made["trusted_error"] or ""
    check("only untrusted" in err,
          "Nova refuses a trusted ptnetmap port with a clear error", err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptnetd", required=True)
    ap.add_argument("--ptctl", required=True)
    ap.add_argument("--nova-vifs", help="what the patched Nova made "
                    "(written by --write-nova-vifs)")
    args = ap.parse_args()

    shutil.rmtree(lab.WORK, ignore_errors=True)
    os.makedirs(lab.WORK)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    make_importable(lab.WORK)

    from oslo_config import cfg
    import os_vif
    from os_vif import exception as osv_exception
    from os_vif import objects

    agent = lab.Agent(args.ptnetd, args.ptctl)
    if not agent.start():
        return 1
    agent.ok("switch", "create", SWITCH)

    cfg.CONF([], project="ptnetmap-vif-lab", default_config_files=[])
    os_vif.initialize()
    names = sorted(os_vif._EXT_MANAGER.names())
    check("ptnetmap" in names,
          "os_vif.initialize() loads plugin ptnetmap from its entry point",
          names)
    infos = {p.plugin_name: p for p in os_vif.host_info().plugin_info}
    vif_types = [v.vif_object_name
                 for v in getattr(infos.get("ptnetmap"), "vif_info", [])]
    check(vif_types == ["VIFVHostUser"],
          "os_vif.host_info() lists ptnetmap with VIFVHostUser", infos)
    cfg.CONF.set_override("agent_socket", agent.sock, "os_vif_ptnetmap")
    cfg.CONF.set_override("timeout", 30, "os_vif_ptnetmap")

    vif, inst = through_os_vif(agent, os_vif, objects, osv_exception)
    if args.nova_vifs:
        through_nova(agent, os_vif, objects, args.nova_vifs)
    check(vmlab.pt_names() == [] and attachment_names(agent) == [],
          "nothing is left in ptnetd or the kernel",
          (vmlab.pt_names(), attachment_names(agent)))

    agent.ok("switch", "delete", SWITCH)
    agent.proc.send_signal(signal.SIGTERM)
    check(agent.proc.wait(30) == 0, "ptnetd exits 0 on SIGTERM")
    cfg.CONF.set_override("timeout", 2, "os_vif_ptnetmap")
    try:
        os_vif.plug(vif, inst)
        err = None
    except osv_exception.PlugException as e:
        err = e
    check(err is not None and "is ptnetd running" in str(err)
          and agent.sock in str(err),
          "with ptnetd stopped, os_vif.plug raises PlugException naming the "
          "socket", err)

    return steps.verdict()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--write-nova-vifs":
        # On the host: --write-nova-vifs PATCHED_NOVA_DIR OUT.json
        write_nova_vifs(sys.argv[2], sys.argv[3])
        sys.exit(0)
    steps.run_main("plugins.vif_functional", main, vmlab.cleanup)
