#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""e2e.libvirt_ptnetmap: a domain with <interface type='ptnetmap'> under the
patched libvirt (libvirt/, built by libvirt/build.sh).

Runs inside the lab VM (tests/lab/lab.py run --kvm), ptnetmap.ko loaded, as
root, with the same set-up as e2e.libvirt_shmem (virsh_shmem_test.py, whose
helpers it uses): users, tmpfs over libvirt's folders, the agent, a VALE
switch with the host's stack bridged on. The difference is the daemon, the
patched libvirtd run from the cached build, and the device:

  0. `virsh domcapabilities` lists ptnetmap among the interface types
     (<devices><interface><enum name='type'>, what Nova's patch reads to
     choose <interface type='ptnetmap'> over <shmem>).
  1. A definition whose interface names a switch port with the wrong trust
     policy is refused with the patch's message.
  2. ptnetd makes VM attachment vm1 on switch valeL; a domain with
     <interface type='ptnetmap'><source switch='valeL' port='vm1'/> and the
     agent's socket is defined: `virsh dumpxml` gives the interface back
     with its defaults filled in, `virsh domiflist` (the patched virsh)
     shows type ptnetmap, source valeL:vm1, model ivshmem-doorbell.
  3. `virsh start`: QEMU's command line has the chardev on the socket and
     the ivshmem-doorbell device with 3 vectors; QEMU is confined (enforce)
     by the profile the patched virt-aa-helper wrote, which grants the
     socket (Debian's AppArmor policy loaded, as in e2e.libvirt_shmem); the guest's driver binds
     it, the guest pings the host through the port and the host the guest.
  4. `virsh detach-device --live` of the interface under pings: the guest
     sees it go, the domain's profile loses the socket; `virsh
     attach-device --live`: the profile has it again, traffic again.
  5. The guest powers off by itself; AppArmor denied QEMU nothing; the
     domain is undefined.
Every check prints one line; the exit status is 1 if any failed.
"""
import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import virsh_shmem_test as shm  # noqa: E402  (the lab set-up of e2e.libvirt_shmem)

from virsh_shmem_test import (DOMAIN, SWITCH, VM, URI, WORK, run,  # noqa: E402
                              wait_for, results_file, host_pings)
import steps  # noqa: E402  (on the path through virsh_shmem_test)
from steps import check, log, require  # noqa: E402

LIBVIRT = None  # the patched build folder (libvirt/build.sh path)/build


def lv(*args, timeout=60):
    """A program of the patched build, with the build's libraries and drivers."""
    return run(LIBVIRT / "run", *args, timeout=timeout)


def virsh(*args, timeout=60):
    return lv(LIBVIRT / "tools" / "virsh", "-c", URI, *args, timeout=timeout)


def use_patched_virt_aa_helper():
    """The patched virt-aa-helper (patch 0004 teaches it the interface's
    socket) where libvirtd runs it, /usr/lib/libvirt, over Debian's (a
    script that runs the build's). Its own
    profile stays unloaded: that profile denies reading ~/.cache, where the
    build and its libraries are, so the helper runs unconfined here (an
    installed package does not have that problem). The patched libvirtd
    also runs unconfined (its path is not /usr/sbin/libvirtd); it finds
    AppArmor in use through the loaded profile named libvirtd."""
    if shm.SECURITY != "apparmor":
        return
    shm.load_apparmor_policy(helper_profile=False)
    # Run from its build folder, not through the bind mount: it finds the
    # patched libvirt.so beside itself ($ORIGIN), not Debian's.
    wrapper = WORK / "virt-aa-helper"
    wrapper.write_text(f'#!/bin/sh\nexec {LIBVIRT / "src" / "virt-aa-helper"} "$@"\n')
    wrapper.chmod(0o755)
    shm.mount("--bind", str(wrapper), "/usr/lib/libvirt/virt-aa-helper")


def start_patched_libvirtd():
    proc = shm.start_libvirtd([LIBVIRT / "run", LIBVIRT / "src" / "libvirtd"])
    up = wait_for(lambda: proc.poll() is None and
                  virsh("version", timeout=120).returncode == 0, 150, 1)
    require(up, "the patched libvirtd serves qemu:///system",
            (WORK / "libvirtd.out").read_text()[-2000:] + shm.libvirtd_log())
    return proc


def interface_xml(sock, trust="untrusted"):
    return (f"<interface type='ptnetmap'>\n"
            f"  <mac address='52:54:00:7e:00:01'/>\n"
            f"  <source switch='{SWITCH}' port='{VM}'/>\n"
            f"  <ptnetmap trust='{trust}' socket='{sock}'/>\n"
            f"</interface>\n")


def with_interface(domain, iface):
    return domain.replace("    <memballoon model='none'/>",
                          "    " + iface.replace("\n", "\n    ").rstrip() +
                          "\n    <memballoon model='none'/>")


def live_has_interface():
    return "<interface type='ptnetmap'>" in virsh("dumpxml", DOMAIN).stdout


def interface_types():
    """The interface types of the domain capabilities (qemu, KVM, this arch)."""
    r = virsh("domcapabilities", "--virttype", "kvm", timeout=120)
    if r.returncode != 0:
        return None, r.stderr
    caps = ET.fromstring(r.stdout)
    return ({v.text for v in caps.findall("./devices/interface/enum[@name='type']/value")},
            r.stdout)


def main():
    global LIBVIRT
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="our build folder")
    ap.add_argument("--libvirt", required=True, help="the patched libvirt's build folder")
    ap.add_argument("--security", choices=["apparmor", "none"], default="apparmor",
                    help="qemu.conf's security_driver (default apparmor)")
    args = ap.parse_args()
    shm.SECURITY = args.security
    build = Path(args.build)
    LIBVIRT = Path(args.libvirt)
    require((LIBVIRT / ".built").exists(), "a finished patched libvirt build",
            f"nothing at {LIBVIRT}: run libvirt/build.sh build")
    module = (build / "kmod" / "ptnetmap.ko").resolve()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(mode=0o755)
    shm.add_users()
    use_patched_virt_aa_helper()
    libvirtd = start_patched_libvirtd()

    agent = shm.Agent(build / "agent" / "ptnetd", build / "agent" / "ptctl")
    agent.start()
    require(agent.ptctl("switch", "create", SWITCH).returncode == 0, f"ptctl switch create {SWITCH}")
    r = agent.ptctl("vm", "attach", SWITCH, VM, "--trust", "untrusted")
    require(r.returncode == 0, f"ptctl vm attach {SWITCH} {VM}", r.stderr)
    sock = WORK / "ivshmem" / f"{VM}.sock"
    shm.host_stack_on_switch(build)

    results = WORK / "results"
    results.mkdir(mode=0o777)
    os.chmod(results, 0o777)
    boot = WORK / "boot"
    boot.mkdir()
    _, vmlinuz, _ = shm.harness.lab_kernel()
    shutil.copy(vmlinuz, boot / "vmlinuz")
    shutil.copy(shm.harness.ensure_initramfs(), boot / "initramfs.cpio.gz")
    shm.harness.write_job(results, [str(HERE / "virsh_shmem_guest.sh")],
                          {"LAB_LEVEL": "2", "GUEST_SECONDS": "200"}, "/")
    domain = shm.domain_xml(results, boot / "vmlinuz", boot / "initramfs.cpio.gz", module)

    # 0. The domain capabilities say that this libvirt has the type.
    types, out = interface_types()
    check(types is not None and {"ptnetmap", "bridge", "user"} <= types,
          "virsh domcapabilities lists ptnetmap (and bridge, user) as interface types",
          out[-1500:])

    # 1. A wrong trust policy is refused at define time.
    (WORK / "bad.xml").write_text(with_interface(domain, interface_xml(sock, "trusted")))
    r = virsh("define", WORK / "bad.xml")
    check(r.returncode != 0 and "trust must be 'untrusted'" in r.stderr,
          "a switch port with trust='trusted' is refused with the patch's message", r.stderr)

    # 2. Define; the XML round trip and domiflist.
    iface = interface_xml(sock)
    (WORK / "iface.xml").write_text(iface)
    (WORK / "domain.xml").write_text(with_interface(domain, iface))
    r = virsh("define", WORK / "domain.xml")
    require(r.returncode == 0, f"virsh define {DOMAIN} with <interface type='ptnetmap'>", r.stderr)
    inactive = virsh("dumpxml", DOMAIN, "--inactive").stdout
    check(f"<source switch='{SWITCH}' port='{VM}'/>" in inactive and
          f"<ptnetmap trust='untrusted' rings='1' socket='{sock}'/>" in inactive and
          "<model type='ivshmem-doorbell'/>" in inactive,
          "dumpxml gives the interface back, defaults filled in", inactive)
    rows = [line.split() for line in virsh("domiflist", DOMAIN).stdout.splitlines()]
    check(["-", "ptnetmap", f"{SWITCH}:{VM}", "ivshmem-doorbell", "52:54:00:7e:00:01"] in rows,
          "virsh domiflist: ptnetmap, SWITCH:PORT, ivshmem-doorbell, the MAC", str(rows))

    # 3. Start: QEMU's command line, traffic both ways.
    r = virsh("start", DOMAIN, timeout=120)
    require(r.returncode == 0, f"virsh start {DOMAIN}", r.stderr + shm.libvirtd_log())
    uid, cmdline = shm.qemu_process()
    check(uid == pwd.getpwnam(shm.QEMU_USER).pw_uid and
          f"-chardev socket,id=charnet0,path={sock}" in cmdline and
          '"driver":"ivshmem-doorbell","id":"net0","chardev":"charnet0","vectors":3' in cmdline,
          "QEMU gets the chardev on the agent's socket and ivshmem-doorbell with 3 vectors",
          f"uid {uid}: {cmdline}")
    shm.check_qemu_confined(shm.qemu_pid(), sock)
    ok = wait_for(lambda: results_file(results, "guest-up-1") is not None, 150, 0.5)
    require(ok, "the guest boots and its driver binds the device",
            (WORK / "console.log").read_text(errors="replace")[-3000:]
            if (WORK / "console.log").exists() else "no console")
    check(results_file(results, "guest-up-1") == "ok", "the guest pings the host through the port")
    good, summary = host_pings()
    check(good, "the host pings the guest through the port", summary)

    # 4. Hot-unplug under pings, hot-plug back.
    stream = subprocess.Popen(["busybox", "ping", "-i", "0.05", "-W", "1", shm.GUEST_IP],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    steps.CHILDREN.append(stream)
    time.sleep(2)
    r = virsh("detach-device", DOMAIN, WORK / "iface.xml", "--live", timeout=90)
    check(r.returncode == 0, "virsh detach-device --live of the interface", r.stdout + r.stderr)
    check(wait_for(lambda: not live_has_interface(), 60, 0.5),
          "the running domain no longer has the interface")
    check(wait_for(lambda: results_file(results, "guest-gone-1") == "ok", 60),
          "the guest saw its interface go")
    stream.send_signal(signal.SIGINT)
    log("pings during the unplug: " +
        " | ".join(stream.communicate(timeout=30)[0].strip().splitlines()[-2:]))
    shm.kernel_clean("interface unplugged")
    if shm.SECURITY == "apparmor":
        rules = shm.profile_files()
        check(not shm.grants_rw(rules, sock),
              "unplugged: the domain's AppArmor profile no longer grants the socket",
              rules[-1500:])
    r = virsh("attach-device", DOMAIN, WORK / "iface.xml", "--live", timeout=90)
    check(r.returncode == 0, "virsh attach-device --live of the interface", r.stdout + r.stderr)
    check(wait_for(live_has_interface, 30, 0.5), "the running domain has the interface again")
    if shm.SECURITY == "apparmor":
        rules = shm.profile_files()
        check(shm.grants_rw(rules, sock),
              "plugged: the domain's AppArmor profile grants the socket again",
              rules[-1500:])
    ok = wait_for(lambda: results_file(results, "guest-up-2") is not None, 90)
    check(ok and results_file(results, "guest-up-2") == "ok",
          "the guest's interface is back and pings the host through the port")
    good, summary = host_pings()
    check(good, "the host pings the guest again", summary)

    # 5. Stop, undefine.
    (results / "stop").write_text("")
    off = wait_for(lambda: "shut off" in virsh("domstate", DOMAIN).stdout, 90, 1)
    if not off:
        virsh("destroy", DOMAIN)
    check(off, "the guest powers off by itself")
    check(results_file(results, "status") == "ok", "the guest's job passed")
    shm.check_no_denials("boot, traffic, unplug and re-plug")
    check(virsh("undefine", DOMAIN).returncode == 0, "virsh undefine")
    shm.kernel_clean("at the end")
    r = agent.ptctl("vm", "detach", VM)
    check(r.returncode == 0, f"ptctl vm detach {VM}", r.stderr)
    agent.proc.send_signal(signal.SIGTERM)
    agent.proc.wait(30)
    libvirtd.send_signal(signal.SIGTERM)
    libvirtd.wait(30)

    return steps.verdict()


def cleanup():
    if LIBVIRT and virsh("domstate", DOMAIN, timeout=30).returncode == 0:
        virsh("destroy", DOMAIN, timeout=30)
    shm.cleanup()


if __name__ == "__main__":
    steps.run_main("e2e.libvirt_ptnetmap", main, cleanup)
