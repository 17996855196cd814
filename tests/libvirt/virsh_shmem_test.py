#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""e2e.libvirt_shmem: a libvirt domain on a ptnetmap port through stock libvirt.

Runs inside the lab VM (tests/lab/lab.py run --kvm), ptnetmap.ko loaded, as
root. Debian 12's own libvirtd 9.0 runs there without systemd: its config,
state, cache and log folders are tmpfs mounted over the (read-only) host
folders, QEMU runs as an unprivileged user `libvirt-qemu` that is a member
of the ivshmem socket group `ptnetmap-vm` (both added to bind-mounted copies
of /etc/passwd and /etc/group), and QEMU is confined by AppArmor as on a
Debian host: the lab runs with the host's filesystem as its root (lab.py
--switch-root), Debian's libvirt profiles are loaded in enforce mode
(libvirtd's, virt-aa-helper's, the QEMU template; from libvirt-daemon-system,
unpacked by scripts/setup.sh), and the security driver is "apparmor", so
virt-aa-helper writes each domain's profile. (--security none: DAC only.)

  1. ptnetd --ivshmem_group ptnetmap-vm makes VM attachment vm1 (a private
     port on VALE switch valeL); its socket is mode 0660, group ptnetmap-vm.
     A veth pair bridged onto valeL (ptbridge) is the host's stack, 10.99.0.2.
  2. A domain booting the lab kernel and initramfs (9p shares of / and of a
     results folder, as lab.py guest does) is defined; `ptctl domain attach
     --config` adds the agent's <shmem> device, a second time is refused.
     `virsh start`: QEMU runs as libvirt-qemu, confined (enforce) by the
     profile virt-aa-helper wrote for the domain, which grants the socket;
     libvirtd runs under Debian's libvirtd profile. QEMU connects; the
     guest driver binds the device, the guest pings the host through the
     port, the host pings the guest.
  3. Under a stream of pings, `virsh detach-device --live` unplugs the
     device: the guest sees it go, the host kernel stays clean, the agent
     answers and still lists vm1. ptnetd is killed (SIGKILL) and restarted:
     it adopts vm1. `virsh attach-device --live` plugs it back: traffic again.
  4. The same with `ptctl domain detach|attach --live`.
  5. The guest powers off by itself (its log is checked for oopses and our
     module must unload there too); AppArmor denied QEMU nothing; `ptctl domain detach --config` removes
     the device from the definition; the domain is undefined.
Every check prints one line; the exit status is 1 if any failed.
"""
import argparse
import errno
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))
sys.path.insert(0, str(HERE.parent / "agent"))
import lab as harness  # noqa: E402  (lab_kernel, ensure_initramfs, write_job, trouble_in)
import agent_vm_lab_test as vmlab  # noqa: E402  (pt_info, cleanup)
import steps  # noqa: E402
from steps import CHILDREN, check, log, require  # noqa: E402

MOUNTS = []

WORK = Path("/tmp/virsh-shmem")
URI = "qemu:///system"
DOMAIN, SWITCH, VM = "ptvm1", "valeL", "vm1"
QEMU_USER, VM_GROUP = "libvirt-qemu", "ptnetmap-vm"
GUEST_IP, HOST_IP = "10.99.0.1", "10.99.0.2"
# Folders libvirtd writes to as root; scripts/setup.sh makes the ones Debian's
# libvirt-daemon package does not ship, so that tmpfs can be mounted on them.
LIBVIRT_DIRS = ["/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"]

# libvirt-daemon-system's AppArmor policy, unpacked by scripts/setup.sh.
APPARMOR_CACHE = harness.CACHE / "libvirt-apparmor"
SECURITY = "apparmor"  # qemu.conf's security_driver (--security)


def qemu_conf():
    return f"""\
# Written by tests/libvirt/virsh_shmem_test.py for the lab: no systemd, no
# cgroups, no virtlogd.
user = "{QEMU_USER}"
group = "{QEMU_USER}"
dynamic_ownership = 1
remember_owner = 0
security_driver = "{SECURITY}"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"""
LIBVIRTD_CONF = """\
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""


def run(*cmd, timeout=60):
    """The command's CompletedProcess; exit status 124 if it timed out."""
    argv = [str(c) for c in cmd]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "",
                                           f"timed out after {timeout} s")


def wait_for(cond, seconds, step=0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def mount(*args):
    r = run("mount", *args)
    require(r.returncode == 0, f"mount {' '.join(args)}", r.stderr.strip())
    MOUNTS.append(args[-1])


def add_users():
    """libvirt-qemu (QEMU's user, also in kvm) and ptnetmap-vm (the socket
    group, libvirt-qemu a member) in bind-mounted copies of passwd and group."""
    etc = WORK / "etc"
    etc.mkdir()
    passwd = Path("/etc/passwd").read_text()
    groups = Path("/etc/group").read_text()
    used = {int(line.split(":")[2]) for line in (passwd + groups).splitlines() if line.count(":") >= 3}
    free = (i for i in range(64000, 65000) if i not in used)
    lines = []
    for line in groups.splitlines():
        fields = line.split(":")
        if fields[0] == "kvm" and QEMU_USER not in fields[3].split(","):
            fields[3] = ",".join(filter(None, fields[3].split(",") + [QEMU_USER]))
        lines.append(":".join(fields))
    names = {line.split(":")[0] for line in lines}
    if QEMU_USER not in {line.split(":")[0] for line in passwd.splitlines()}:
        uid = next(free)
        passwd += f"{QEMU_USER}:x:{uid}:{uid}:QEMU under libvirt (lab):/var/lib/libvirt:/usr/sbin/nologin\n"
        if QEMU_USER not in names:
            lines.append(f"{QEMU_USER}:x:{uid}:")
    if VM_GROUP not in names:
        lines.append(f"{VM_GROUP}:x:{next(free)}:{QEMU_USER}")
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text("\n".join(lines) + "\n")
    mount("--bind", str(etc / "passwd"), "/etc/passwd")
    mount("--bind", str(etc / "group"), "/etc/group")
    # devtmpfs makes /dev/kvm root-only; udev would give it to group kvm.
    os.chown("/dev/kvm", 0, grp.getgrnam("kvm").gr_gid)
    os.chmod("/dev/kvm", 0o660)


def lsm_label(pid):
    """The AppArmor label of a process: "unconfined", "NAME (enforce)"."""
    for name in (f"/proc/{pid}/attr/apparmor/current", f"/proc/{pid}/attr/current"):
        try:
            return Path(name).read_text().strip("\0\n ")
        except OSError:
            continue
    return None


def load_apparmor_policy(helper_profile=True):
    """Debian's libvirt AppArmor policy in enforce mode, as
    libvirt-daemon-system installs it: /etc/apparmor.d (the host's, from the
    apparmor package, plus libvirt's files) on tmpfs, the empty local
    overrides its postinst makes, libvirtd's profile and (helper_profile)
    virt-aa-helper's loaded. Nothing of ours is added: the domain's own
    profile must come from virt-aa-helper alone."""
    if SECURITY != "apparmor":
        return
    require("switched" in Path("/proc/1/cmdline").read_bytes().decode(errors="replace"),
            "the lab runs with the host's filesystem as / (lab.py --switch-root)",
            "AppArmor names files from the mount namespace's root: in a chroot no "
            "profile matches")
    if not Path("/sys/kernel/security/apparmor").exists():
        mount("-t", "securityfs", "securityfs", "/sys/kernel/security")
    enabled = Path("/sys/module/apparmor/parameters/enabled")
    require(enabled.exists() and enabled.read_text().strip() == "Y",
            "AppArmor is enabled in the lab kernel")
    version = run("dpkg-query", "-W", "-f=${Version}", "libvirt-daemon").stdout.strip()
    policy = APPARMOR_CACHE / version / "etc" / "apparmor.d"
    require((policy / "usr.sbin.libvirtd").exists(),
            f"libvirt-daemon-system {version}'s AppArmor profiles are unpacked",
            f"nothing at {policy}: run scripts/setup.sh")
    stage = WORK / "apparmor.d"
    shutil.copytree("/etc/apparmor.d", stage, symlinks=True)
    shutil.copytree(policy, stage, symlinks=True, dirs_exist_ok=True)
    for local in ("abstractions/libvirt-qemu", "usr.sbin.libvirtd",
                  "usr.lib.libvirt.virt-aa-helper"):
        (stage / "local" / local).parent.mkdir(parents=True, exist_ok=True)
        (stage / "local" / local).touch()
    mount("--bind", str(stage), "/etc/apparmor.d")
    profiles = ["usr.sbin.libvirtd"] + (["usr.lib.libvirt.virt-aa-helper"] if helper_profile else [])
    for name in profiles:
        r = run("apparmor_parser", "--replace", "--skip-cache", f"/etc/apparmor.d/{name}")
        require(r.returncode == 0, f"apparmor_parser loads {name}", r.stderr)
    loaded = Path("/sys/kernel/security/apparmor/profiles").read_text()
    require("libvirtd (enforce)" in loaded, "libvirtd's profile is in enforce mode", loaded)


def check_qemu_confined(pid, sock):
    """QEMU runs under its domain's profile in enforce mode, and the profile
    virt-aa-helper wrote grants the agent's socket. (Debian 12's kernel does
    not mediate connect() on a unix socket by path, 6.14's does: the rule is
    what such a kernel checks.)"""
    if SECURITY != "apparmor":
        return
    uuid = domain_uuid()
    label = lsm_label(pid)
    check(label == f"libvirt-{uuid} (enforce)",
          "QEMU is confined by its domain's AppArmor profile, enforce mode", label)
    rules = profile_files()
    check(grants_rw(rules, sock),
          "virt-aa-helper's profile for the domain grants QEMU the agent's socket",
          rules[-1500:] or "no profile")
    errno_seen = write_under_profile(f"libvirt-{uuid}", PROBE)
    logged = [line for line in apparmor_denials() if PROBE.name in line]
    check(errno_seen == "EACCES" and not PROBE.exists() and logged,
          "the domain's profile is enforced: a write it does not grant is refused and logged",
          f"{errno_seen}; kernel log: {logged}")


def domain_uuid():
    return run("virsh", "-c", URI, "domuuid", DOMAIN).stdout.strip()


def profile_files():
    """The file rules virt-aa-helper wrote for the domain ("" if none)."""
    files = Path(f"/etc/apparmor.d/libvirt/libvirt-{domain_uuid()}.files")
    return files.read_text() if files.exists() else ""


def grants_rw(rules, path):
    """Whether a rule of `rules` lets QEMU read and write `path` (the
    domain's profile says rw; a hot-plug adds the path as rwk)."""
    for line in rules.splitlines():
        m = re.fullmatch(r'\s*"(.*)"\s+([a-z]+),\s*', line)
        if m and m.group(1) == str(path) and {"r", "w"} <= set(m.group(2)):
            return True
    return False


# A file no domain profile grants: written under a domain's profile to show
# that the profile is enforced and that its denials reach the kernel log.
PROBE = WORK / "apparmor-probe"


def write_under_profile(profile, path):
    """Tries to create `path` from a child switched to `profile` (no exec:
    the child stays this interpreter); "ok", an errno name, or what failed."""
    attr = Path("/proc/self/attr/apparmor/current")
    attr = attr if attr.exists() else Path("/proc/self/attr/current")
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        try:
            with open(attr, "w") as f:
                f.write(f"changeprofile {profile}")
        except OSError as e:
            os.write(wr, f"changeprofile failed: {e}".encode())
            os._exit(0)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.write(wr, b"ok")
        except OSError as e:
            os.write(wr, errno.errorcode.get(e.errno, str(e.errno)).encode())
        os._exit(0)
    os.close(wr)
    with os.fdopen(rd) as f:
        answer = f.read()
    os.waitpid(pid, 0)
    return answer


def apparmor_denials():
    """The kernel log's AppArmor denials for libvirt's domain profiles."""
    return [line for line in run("dmesg").stdout.splitlines()
            if 'apparmor="DENIED"' in line and 'profile="libvirt-' in line]


def check_no_denials(what):
    if SECURITY == "apparmor":
        denials = [line for line in apparmor_denials() if PROBE.name not in line]
        check(not denials, f"{what}: AppArmor denied QEMU nothing", "\n".join(denials[-10:]))



def start_libvirtd(argv=("libvirtd",)):
    """libvirtd (Debian's, or argv's) with its folders on tmpfs and the
    lab's configuration; not yet waited for."""
    for d in LIBVIRT_DIRS:
        require(os.path.isdir(d), f"{d} exists (a mount point for tmpfs)",
                "run scripts/setup.sh: it installs libvirt and makes these folders")
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)
    Path("/etc/libvirt/qemu.conf").write_text(qemu_conf())
    Path("/etc/libvirt/libvirtd.conf").write_text(LIBVIRTD_CONF)
    out = open(WORK / "libvirtd.out", "w")
    proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
    CHILDREN.append(proc)
    return proc


def wait_for_libvirtd(proc):
    # The first connection waits for the QEMU capabilities probe (slow under TCG).
    up = wait_for(lambda: proc.poll() is None and
                  run("virsh", "-c", URI, "version", timeout=120).returncode == 0, 150, 1)
    require(up, "libvirtd (Debian's 9.0) serves qemu:///system without systemd",
            (WORK / "libvirtd.out").read_text()[-2000:] + libvirtd_log())


def libvirtd_log():
    p = Path("/var/log/libvirt/libvirtd.log")
    return p.read_text(errors="replace")[-3000:] if p.exists() else ""


class Agent:
    def __init__(self, ptnetd, ptctl):
        self.ptnetd, self.ptctl_bin = ptnetd, ptctl
        self.sock = WORK / "ptnetd.sock"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = WORK / f"ptnetd.{self.starts}.log"
        self.proc = subprocess.Popen(
            [self.ptnetd, "--datapath=kernel", f"--socket={self.sock}",
             f"--db_path={WORK}/ptnetd.db", f"--ivshmem_dir={WORK}/ivshmem",
             f"--ivshmem_group={VM_GROUP}", "--metrics_address=127.0.0.1:9613"],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        CHILDREN.append(self.proc)
        require(wait_for(lambda: self.proc.poll() is None and
                         self.ptctl("health").returncode == 0, 60, 0.3),
                f"ptnetd #{self.starts} serves", self.log_path.read_text())
        return self.log_path.read_text()

    def ptctl(self, *args):
        return run(self.ptctl_bin, f"--socket={self.sock}", *args, timeout=120)


def host_pings(count=5):
    r = run("busybox", "ping", "-c", count, "-i", "0.2", "-W", "2", GUEST_IP, timeout=60)
    return r.returncode == 0, r.stdout.strip().splitlines()[-2:]


def live_has_shmem():
    r = run("virsh", "-c", URI, "dumpxml", DOMAIN)
    return f"<shmem name='{VM}'>" in r.stdout


def kernel_clean(what):
    dmesg = run("dmesg").stdout
    trouble = harness.trouble_in(dmesg, "LAB: loading modules")
    check(trouble is None, f"{what}: no oops or warning in the host kernel", trouble)


def host_healthy(agent, what):
    kernel_clean(what)
    check(agent.ptctl("health").returncode == 0, f"{what}: ptnetd answers")
    r = agent.ptctl("vm", "get", VM)
    check(r.returncode == 0 and f"{SWITCH}:{VM}" in r.stdout,
          f"{what}: ptnetd still lists {VM}", r.stdout + r.stderr)
    info = vmlab.pt_info(VM, 1)
    check(info is not None and info.port.decode() == f"{SWITCH}:{VM}",
          f"{what}: the kernel attachment {VM} is still there")


def results_file(results, name):
    """The guest's verdict in `name`, or None while it has not written one
    (an empty file counts as not written yet)."""
    p = results / name
    return (p.read_text().strip() or None) if p.exists() else None


def unplug(agent, results, round_no, do_unplug, how):
    """Unplugs the device under a stream of pings; checks the host."""
    stream = subprocess.Popen(["busybox", "ping", "-i", "0.05", "-W", "1", GUEST_IP],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    CHILDREN.append(stream)
    time.sleep(2)
    r = do_unplug()
    check(r.returncode == 0, f"{how}: hot-unplug under traffic", r.stdout + r.stderr)
    check(wait_for(lambda: not live_has_shmem(), 60, 0.5),
          f"{how}: the running domain no longer has the device")
    check(wait_for(lambda: results_file(results, f"guest-gone-{round_no}") == "ok", 60),
          f"{how}: the guest saw its interface go")
    stream.send_signal(signal.SIGINT)
    summary = stream.communicate(timeout=30)[0].strip().splitlines()[-2:]
    log(f"pings during the unplug: {' | '.join(summary)}")
    host_healthy(agent, f"{how}, device unplugged")


def plug_back(results, appearance, plug, how):
    r = plug()
    check(r.returncode == 0, f"{how}: hot-plug", r.stdout + r.stderr)
    check(wait_for(live_has_shmem, 30, 0.5), f"{how}: the running domain has the device again")
    ok = wait_for(lambda: results_file(results, f"guest-up-{appearance}") is not None, 120)
    check(ok and results_file(results, f"guest-up-{appearance}") == "ok",
          f"{how}: the guest's interface is back and pings the host through the port",
          results_file(results, "output"))
    good, summary = host_pings()
    check(good, f"{how}: the host pings the guest again", summary)


def host_stack_on_switch(build):
    """The lab VM's own stack on SWITCH at HOST_IP: a veth pair, one end
    bridged onto the switch's port `uplink` by ptbridge."""
    run("modprobe", "veth")
    for cmd in (["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["ip", "addr", "add", f"{HOST_IP}/24", "dev", "v1"],
                ["ip", "link", "set", "v0", "up"], ["ip", "link", "set", "v1", "up"]):
        require(run(*cmd).returncode == 0, " ".join(cmd))
    bridge = subprocess.Popen([build / "tools" / "ptbridge", "-i", "netmap:v0", "-i",
                               f"{SWITCH}:uplink", "-q"],
                              stdout=open(WORK / "ptbridge.log", "w"), stderr=subprocess.STDOUT)
    CHILDREN.append(bridge)


def domain_xml(results, kernel, initramfs, module):
    release, _, root = harness.lab_kernel()
    # A build or clone under /tmp (CI's, say) must stay visible in the guest,
    # whose /tmp is a fresh tmpfs.
    keep = ",".join(harness.tmp_tops([Path(module).resolve(), harness.SOURCE_DIR, Path.cwd()]))
    append = ["console=ttyS0", "quiet", "panic=-1", "oops=panic", "no_timer_check",
              "lab.level=2", f"lab.modules={module}", f"lab.keep={keep}", "lab.kvm=0",
              f"lab.moddir={root / 'lib' / 'modules'}"]
    return f"""<domain type='kvm'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>384</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initramfs}</initrd>
    <cmdline>{' '.join(append)}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='host-passthrough'/>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount' accessmode='passthrough' multidevs='remap'>
      <source dir='/'/><target dir='host'/><readonly/>
    </filesystem>
    <filesystem type='mount' accessmode='squash'>
      <source dir='{results}'/><target dir='results'/>
    </filesystem>
    <serial type='file'><source path='{WORK}/console.log'/><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def qemu_pid():
    pidfile = Path(f"/run/libvirt/qemu/{DOMAIN}.pid")
    return int(pidfile.read_text().strip()) if pidfile.exists() else None


def qemu_process():
    pid = qemu_pid()
    if pid is None:
        return None, ""
    uid = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    return uid, cmdline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="the build folder")
    ap.add_argument("--security", choices=["apparmor", "none"], default="apparmor",
                    help="qemu.conf's security_driver (default apparmor)")
    args = ap.parse_args()
    global SECURITY
    SECURITY = args.security
    build = Path(args.build)
    ptctl = build / "agent" / "ptctl"
    module = (build / "kmod" / "ptnetmap.ko").resolve()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(mode=0o755)
    add_users()
    load_apparmor_policy()
    libvirtd = start_libvirtd()  # it probes QEMU meanwhile: under TCG, a minute

    # 1. The host: agent, switch, the host stack on it, the VM attachment.
    agent = Agent(build / "agent" / "ptnetd", ptctl)
    agent.start()
    require(agent.ptctl("switch", "create", SWITCH).returncode == 0, f"ptctl switch create {SWITCH}")
    r = agent.ptctl("vm", "attach", SWITCH, VM, "--trust", "untrusted")
    require(r.returncode == 0, f"ptctl vm attach {SWITCH} {VM}", r.stderr)
    sock = WORK / "ivshmem" / f"{VM}.sock"
    st = os.stat(sock)
    check(st.st_mode & 0o777 == 0o660 and st.st_gid == grp.getgrnam(VM_GROUP).gr_gid,
          f"{VM}'s socket is mode 0660, group {VM_GROUP} (not world-accessible)",
          f"mode {st.st_mode & 0o777:o}, gid {st.st_gid}")
    host_stack_on_switch(build)

    # 2. Define, attach through the agent, start.
    wait_for_libvirtd(libvirtd)
    results = WORK / "results"
    results.mkdir(mode=0o777)
    os.chmod(results, 0o777)  # QEMU, as libvirt-qemu, writes the guest's files there
    boot = WORK / "boot"
    boot.mkdir()
    _, vmlinuz, _ = harness.lab_kernel()
    shutil.copy(vmlinuz, boot / "vmlinuz")
    shutil.copy(harness.ensure_initramfs(), boot / "initramfs.cpio.gz")
    harness.write_job(results, [str(HERE / "virsh_shmem_guest.sh")],
                      {"LAB_LEVEL": "2", "GUEST_SECONDS": "200"}, "/")
    (WORK / "domain.xml").write_text(
        domain_xml(results, boot / "vmlinuz", boot / "initramfs.cpio.gz", module))
    r = run("virsh", "-c", URI, "define", WORK / "domain.xml")
    require(r.returncode == 0, f"virsh define {DOMAIN}", r.stderr)
    r = agent.ptctl("domain", "attach", DOMAIN, VM, "--config")
    require(r.returncode == 0, f"ptctl domain attach {DOMAIN} {VM} --config", r.stderr)
    inactive = run("virsh", "-c", URI, "dumpxml", DOMAIN, "--inactive").stdout
    check(f"<shmem name='{VM}'>" in inactive and "ivshmem-doorbell" in inactive
          and str(sock) in inactive, "the definition has the agent's <shmem> device", inactive)
    r = agent.ptctl("domain", "attach", DOMAIN, VM, "--config")
    check(r.returncode == 3 and "already has shmem device" in r.stderr,
          "attaching it again is refused (exit 3)", f"exit {r.returncode}: {r.stderr}")
    r = run("virsh", "-c", URI, "start", DOMAIN, timeout=120)
    require(r.returncode == 0, f"virsh start {DOMAIN}", r.stderr + libvirtd_log())
    uid, cmdline = qemu_process()
    check(uid == pwd.getpwnam(QEMU_USER).pw_uid and "ivshmem-doorbell" in cmdline
          and f"path={sock}" in cmdline,
          f"QEMU runs as {QEMU_USER} with -device ivshmem-doorbell on {VM}'s socket",
          f"uid {uid}: {cmdline}")
    if SECURITY == "apparmor":
        check(lsm_label(libvirtd.pid) == "libvirtd (enforce)",
              "libvirtd runs confined by Debian's libvirtd profile", lsm_label(libvirtd.pid))
    check_qemu_confined(qemu_pid(), sock)
    ok = wait_for(lambda: results_file(results, "guest-up-1") is not None, 150, 0.5)
    require(ok, "the guest boots and its driver binds the device",
            (WORK / "console.log").read_text(errors="replace")[-3000:]
            if (WORK / "console.log").exists() else "no console")
    check(results_file(results, "guest-up-1") == "ok", "the guest pings the host through the port")
    good, summary = host_pings()
    check(good, "the host pings the guest through the port", summary)

    # 3. virsh detach-device / attach-device, an agent restart in between.
    xml = agent.ptctl("vm", "xml", VM).stdout
    (WORK / "shmem.xml").write_text(xml)
    unplug(agent, results, 1,
           lambda: run("virsh", "-c", URI, "detach-device", DOMAIN, WORK / "shmem.xml",
                       "--live", timeout=90),
           "virsh detach-device")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    agent.start()
    check(agent.ptctl("vm", "get", VM).returncode == 0 and vmlab.pt_info(VM, 1) is not None
          and sock.exists(),
          f"after kill -9 and restart ptnetd serves {VM} again (adopted)",
          agent.log_path.read_text())
    plug_back(results, 2, lambda: run("virsh", "-c", URI, "attach-device", DOMAIN,
                                      WORK / "shmem.xml", "--live", timeout=90),
              "virsh attach-device")

    # 4. The same through ptctl (libvirt's C API).
    unplug(agent, results, 2,
           lambda: agent.ptctl("--timeout=60", "domain", "detach", DOMAIN, VM, "--live"),
           "ptctl domain detach --live")
    plug_back(results, 3, lambda: agent.ptctl("domain", "attach", DOMAIN, VM, "--live"),
              "ptctl domain attach --live")

    # 5. The guest stops; the device leaves the definition.
    (results / "stop").write_text("")
    off = wait_for(lambda: "shut off" in run("virsh", "-c", URI, "domstate", DOMAIN).stdout, 90, 1)
    if not off:
        run("virsh", "-c", URI, "destroy", DOMAIN)
    check(off, "the guest powers off by itself",
          (WORK / "console.log").read_text(errors="replace")[-2000:])
    status = results_file(results, "status")
    check(status == "ok" and results_file(results, "rc") == "0",
          "the guest's job passed and our module unloaded in the guest",
          f"status {status}, rc {results_file(results, 'rc')}")
    guest_dmesg = (results / "dmesg").read_text(errors="replace") if (results / "dmesg").exists() else ""
    trouble = harness.trouble_in(guest_dmesg, "LAB: loading modules")
    check(bool(guest_dmesg) and trouble is None, "no oops or warning in the guest kernel", trouble)
    check_no_denials("boot, traffic, two unplugs and re-plugs")
    r = agent.ptctl("domain", "detach", DOMAIN, VM, "--config")
    check(r.returncode == 0 and f"<shmem name='{VM}'>" not in
          run("virsh", "-c", URI, "dumpxml", DOMAIN, "--inactive").stdout,
          "ptctl domain detach --config removes it from the definition", r.stderr)
    check(run("virsh", "-c", URI, "undefine", DOMAIN).returncode == 0, "virsh undefine")
    kernel_clean("at the end")
    r = agent.ptctl("vm", "detach", VM)
    check(r.returncode == 0 and vmlab.pt_info(VM, 1) is None, f"ptctl vm detach {VM}")
    agent.proc.send_signal(signal.SIGTERM)
    check(agent.proc.wait(30) == 0, "ptnetd exits 0 on SIGTERM")
    libvirtd.send_signal(signal.SIGTERM)
    libvirtd.wait(30)

    return steps.verdict()


def cleanup():
    if run("virsh", "-c", URI, "domstate", DOMAIN, timeout=30).returncode == 0:
        run("virsh", "-c", URI, "destroy", DOMAIN, timeout=30)
    vmlab.cleanup()
    for target in reversed(MOUNTS):
        run("umount", "-l", target)


if __name__ == "__main__":
    steps.run_main("e2e.libvirt_shmem", main, cleanup)
