#!/usr/bin/env python3
"""deploy.fleet and deploy.fleet_vm: the site playbook against a Debian 12 host.

The lab VM cannot take a real playbook run (its root is the host's, read-only,
and it has no systemd), so this test makes a host of its own:

1. A clean Debian 12 root (the debootstrap tarball install_test.sh caches)
   gets systemd, openssh-server, python3-apt and the lab kernel's modules;
   the ptnetmap packages stay on the controller, as an operator's would.
2. The lab kernel boots it under QEMU/TCG: a small busybox initramfs mounts
   the root over 9p (read-write) and hands over to systemd. QEMU's user
   network (no way out) forwards a free local port to the VM's sshd, which
   takes an SSH key made for this run only.
3. Ansible runs on this machine, at native speed, and reaches the VM over
   SSH (pipelining, one persistent connection): only the modules run in the
   VM. `site.yml` (all four roles, the packages from the .debs) runs twice,
   and the checks run in the VM over the same connection.

Checks (one line each, exit 1 if any failed): the first run has no failed
task; DKMS installed the module for the lab kernel and it is loaded; the
libvirt wiring is in place (a libvirt-qemu user and libvirt's AppArmor
abstraction stand in for libvirt); ptnetd is active, runs the kernel
datapath and `ptctl health` answers; ptctl creates a switch and a port and
the module lists that port; Prometheus scrapes the agent (up == 1); the
second run changes nothing.

`--container` (deploy.fleet) boots the same root with systemd-nspawn
instead, at native speed, on a kernel that cannot load modules, and runs
`ansible-playbook -c local` inside it (the root gets ansible-core): the
module is built for the lab kernel (`ptnetmap_module_kernel`, as for a
kernel installed but not booted yet, so nothing is loaded) and the agent
uses the fake datapath; everything else is the same.

    tests/deploy/fleet_vm.py --build BUILD_DIR|--debs DIR [--container] [--keep]
"""
import argparse
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
sys.path.insert(0, str(SOURCE / "tests" / "lab"))
import lab  # noqa: E402  (the lab kernel, its boot modules)
sys.path.insert(0, str(SOURCE / "tests" / "lib"))
import steps  # noqa: E402
from steps import check, log  # noqa: E402

CACHE = lab.CACHE / "deploy"

INIT = r"""#!/bin/busybox sh
# Mounts the test's root over 9p and starts systemd in it.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /newroot
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r mod; do insmod "/lib/modules/$mod"; done < /lib/modules/boot-order
# cache=loose: only the VM writes the root while it runs; Prometheus's TSDB
# needs shared writable mmap, which 9p refuses without a cache.
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=262144,cache=loose root /newroot || {
	echo "FLEET: cannot mount the root"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /lib/systemd/systemd
"""

JOB = r"""#!/bin/sh
# Runs in the VM (ptnm-fleet-job.service); results go to /root/results.
R=/root/results
mkdir -p $R
export HOME=/root ANSIBLE_CONFIG=/root/deploy/ansible/ansible.cfg ANSIBLE_NOCOLOR=1
cd /root/deploy/ansible
run() {
	echo "FLEET: site.yml run $1"
	ansible-playbook -i /root/inventory.yml site.yml \
		-e ptnetmap_module_deb=/root/debs/$(cd /root/debs && ls ptnetmap-dkms_*.deb) \
		-e ptnetmap_agent_deb=/root/debs/$(cd /root/debs && ls ptnetmap_*_amd64.deb) \
		-e @/root/extra-vars.json > $R/run$1.log 2>&1
	echo $? > $R/rc$1
	echo "FLEET: run $1 exit $(cat $R/rc$1): $(grep '^fleet1' $R/run$1.log)"
}
run 1
lsmod > $R/lsmod 2>&1
dkms status ptnetmap > $R/dkms 2>&1
id -nG libvirt-qemu > $R/libvirt-groups 2>&1
cat /etc/apparmor.d/local/abstractions/libvirt-qemu > $R/apparmor-local 2>&1
systemctl is-active ptnetd > $R/ptnetd-active 2>&1
ptctl health > $R/health 2>&1; echo $? >> $R/health
{ ptctl switch create vale0 && ptctl port create vale0 p1 && ptctl port list; echo $?; } > $R/ptctl 2>&1
i=0
while [ $i -lt 60 ]; do
	python3 -c 'import json, urllib.request, sys
d = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22ptnetd%22%7D"))
r = d["data"]["result"]
sys.exit(0 if r and r[0]["value"][1] == "1" else 1)' 2>/dev/null && { echo 1 > $R/prom-up; break; }
	sleep 2; i=$((i + 1))
done
run 2
journalctl -u ptnetd --no-pager > $R/ptnetd.journal 2>&1
systemctl --failed --no-pager > $R/failed-units 2>&1
echo done > $R/done
systemctl poweroff --no-block
"""

UNIT = """[Unit]
Description=ptnetmap fleet test job
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/job.sh
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
"""

INVENTORY = """all:
  children:
    ptnetmap_hosts:
      hosts:
        fleet1:
    ptnetmap_monitoring:
      hosts:
        fleet1:
  vars:
    ansible_connection: local
    ansible_python_interpreter: /usr/bin/python3
    ansible_host: 127.0.0.1
    ptnetmap_agent_metrics_address: "127.0.0.1:9610"
"""


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Mounts:
    def __init__(self):
        self.points = []

    def bind(self, src, dst):
        os.makedirs(dst, exist_ok=True)
        sh("mount", "--bind", str(src), str(dst))
        self.points.append(dst)

    def release(self):
        for p in reversed(self.points):
            subprocess.run(["umount", "-l", str(p)], check=False)
        self.points = []


def make_root(root, debs, release, kroot, container):
    tarball = CACHE / "bookworm-minbase.tar"
    if not tarball.exists():
        raise SystemExit(f"{tarball} is missing: run tests/deploy/install_test.sh once")
    root.mkdir()
    sh("tar", "-C", str(root), "-xf", str(tarball))
    (CACHE / "apt-archives" / "partial").mkdir(parents=True, exist_ok=True)
    mounts = Mounts()
    try:
        for d in ("proc", "sys", "dev"):
            mounts.bind(f"/{d}", root / d)
        mounts.bind(CACHE / "apt-archives", root / "var/cache/apt/archives")
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        # The host's Debian sources: the lab kernel's headers come from
        # bookworm-security as often as not.
        if Path("/etc/apt/sources.list.d/debian.sources").exists():
            shutil.copy("/etc/apt/sources.list.d/debian.sources", root / "etc/apt/sources.list.d")
            (root / "etc/apt/sources.list").write_text("")
        else:
            shutil.copy("/etc/apt/sources.list", root / "etc/apt/sources.list")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"}
        chroot = ["chroot", str(root)]
        sh(*chroot, "apt-get", "update", "-qq", env=env)
        # The VM has no network: everything the roles install from apt (dkms,
        # Prometheus, the kernel's headers) and what our packages depend on is
        # put in beforehand, as a local mirror would provide it. Our packages
        # themselves are installed by the playbook.
        depends = []
        for deb in debs:
            field = subprocess.run(["dpkg-deb", "--field", str(deb), "Depends"], check=True,
                                   capture_output=True, text=True).stdout
            depends += [d.split("|")[0].split("(")[0].strip() for d in field.split(",")]
        # The controller: ansible-core in the container, this machine (over
        # SSH) for the VM.
        access = ["ansible-core"] if container else ["openssh-server"]
        sh(*chroot, "apt-get", "install", "-y", "-q", "--no-install-recommends",
           "systemd", "systemd-sysv", "udev", "kmod", "iproute2", "procps",
           "python3", "python3-apt", *access, f"linux-headers-{release}",
           "dkms", "prometheus", *sorted(set(d for d in depends if d)),
           env=env, stdout=subprocess.DEVNULL)
    finally:
        mounts.release()
    # The lab kernel's own modules (kvm, 9p...), as its linux-image would put them.
    shutil.copytree(kroot / "lib/modules" / release, root / "lib/modules" / release,
                    dirs_exist_ok=True, symlinks=True)
    # libvirt's side as libvirt-daemon-system leaves it (the QEMU user, the
    # AppArmor abstraction that includes the local override), so that the
    # role ptnetmap_libvirt really wires something.
    sh("chroot", str(root), "adduser", "--quiet", "--system", "--no-create-home",
       "--group", "libvirt-qemu")
    (root / "etc/apparmor.d/abstractions").mkdir(parents=True, exist_ok=True)
    (root / "etc/apparmor.d/abstractions/libvirt-qemu").write_text(
        "  include if exists <local/abstractions/libvirt-qemu>\n")
    (root / "etc/resolv.conf").unlink()
    (root / "etc/hostname").write_text("fleet1\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost fleet1\n")
    (root / "etc/fstab").write_text("")
    # Keep the VM quiet and quick: no timers, no getty on the console.
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "serial-getty@ttyS0.service",
                 "getty@tty1.service", "systemd-timesyncd.service"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        os.symlink("/dev/null", root / "etc/systemd/system" / unit)
    if container:
        (root / "root/debs").mkdir(parents=True)
        for deb in debs:
            shutil.copy(deb, root / "root/debs")
        shutil.copytree(SOURCE / "deploy", root / "root/deploy")
        (root / "root/inventory.yml").write_text(INVENTORY)
        (root / "root/job.sh").write_text(JOB)
        os.chmod(root / "root/job.sh", 0o755)
        (root / "etc/systemd/system/ptnm-fleet-job.service").write_text(UNIT)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(exist_ok=True)
        os.symlink("/etc/systemd/system/ptnm-fleet-job.service", wants / "ptnm-fleet-job.service")
        return
    # The VM: QEMU's user network (the guest is 10.0.2.15, static: no DHCP
    # wait), sshd with this run's key, the virtio NIC's and KVM's modules at
    # boot as on a KVM host.
    (root / "etc/systemd/network/10-qemu.network").write_text(
        "[Match]\nName=en* eth*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n")
    for unit, target in (("systemd-networkd.service", "multi-user.target.wants"),
                         ("systemd-networkd.socket", "sockets.target.wants")):
        (root / "etc/systemd/system" / target).mkdir(exist_ok=True)
        link = root / "etc/systemd/system" / target / unit
        if not link.exists():
            os.symlink(f"/lib/systemd/system/{unit}", link)
    (root / "etc/modules-load.d/fleet-vm.conf").write_text("virtio_net\nkvm_amd\n")
    # The kernel's own view of VALE ports (VALE_LIST), for the checks.
    (root / "root/checks").mkdir()
    shutil.copy(SOURCE / "tests/lib/ptkern.py", root / "root/checks")


def make_initramfs(path, release, kroot):
    lab.ensure_depmod(release, kroot)
    modules = lab.boot_module_files(release, kroot)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        (tree / "bin").mkdir()
        (tree / "lib/modules").mkdir(parents=True)
        shutil.copy2("/bin/busybox", tree / "bin/busybox")
        (tree / "init").write_text(INIT)
        os.chmod(tree / "init", 0o755)
        for m in modules:
            shutil.copy2(m, tree / "lib/modules" / Path(m).name)
        (tree / "lib/modules/boot-order").write_text(
            "\n".join(Path(m).name for m in modules) + "\n")
        names = subprocess.run(["find", "."], cwd=tree, check=True, capture_output=True).stdout
        archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=tree, input=names,
                                 check=True, capture_output=True).stdout
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(archive)


def recap(text):
    lines = [l for l in text.splitlines() if l.startswith("fleet1")]
    return lines[-1] if lines else ""


VM_INVENTORY = """all:
  children:
    ptnetmap_hosts:
      hosts:
        fleet1:
    ptnetmap_monitoring:
      hosts:
        fleet1:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: {port}
    ansible_user: root
    ansible_ssh_private_key_file: {key}
    ansible_ssh_args: "{ssh_args}"
    ansible_ssh_pipelining: true
    ansible_python_interpreter: /usr/bin/python3
    # Prometheus runs on the same host: the agent answers on its loopback.
    ptnetmap_agent_metrics_address: "127.0.0.1:9610"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vm:
    """The root under the lab kernel (QEMU/TCG), reached over SSH."""

    def __init__(self, work, release, vmlinuz):
        self.work, self.release, self.vmlinuz = work, release, vmlinuz
        self.key = work / "id_ed25519"
        self.ssh_port, self.prom_port = free_port(), free_port()
        # One connection for Ansible and the checks (sshd under TCG takes
        # seconds per handshake); no host key check: the key is per run.
        base = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ControlPersist=30m",
                "-o", f"ControlPath={work}/cm-%C",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8"]
        # ssh takes the first value of an option: the master is started on
        # its own (wait_ssh), with its output in a file, not in our pipes.
        self.master_opts = ["-o", "ControlMaster=yes", *base]
        self.ssh_opts = ["-o", "ControlMaster=no", *base]  # the checks: the master or none
        self.ansible_opts = ["-o", "ControlMaster=auto", *base]
        self.proc = None

    def make_key(self, root):
        self.key.unlink(missing_ok=True)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ptnm-fleet", "-f", str(self.key))
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        os.chmod(ssh_dir / "authorized_keys", 0o600)

    def inventory(self):
        return VM_INVENTORY.format(port=self.ssh_port, key=self.key,
                                   ssh_args=" ".join(self.ansible_opts))

    def boot(self, root, initramfs):
        net = (f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,"
               f"hostfwd=tcp:127.0.0.1:{self.prom_port}-:9090")
        cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
               "-smp", "2", "-m", "2048", "-kernel", str(self.vmlinuz), "-initrd", str(initramfs),
               # The lab VM's periodic tick, for the same reason (tests/lab/lab.py).
               "-append", "console=ttyS0 panic=-1 no_timer_check quiet systemd.show_status=0 "
                          "highres=off nohz=off",
               "-nodefaults", "-display", "none", "-serial", f"file:{self.work}/console.log",
               "-monitor", "none", "-no-reboot", "-device", "virtio-rng-pci",
               "-netdev", net, "-device", "virtio-net-pci,netdev=n0",
               "-virtfs", f"local,path={root},mount_tag=root,"
                          "security_model=passthrough,multidevs=remap"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "qemu.log", "w"))

    def ssh(self, command, timeout=600):
        """(exit status, output) of a shell command in the VM."""
        try:
            r = subprocess.run(["ssh", *self.ssh_opts, "-o", "BatchMode=yes",
                                "-o", "ConnectTimeout=20", "-i", str(self.key),
                                "-p", str(self.ssh_port), "root@127.0.0.1", command],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return 255, f"timed out after {timeout} s"
        return r.returncode, r.stdout + r.stderr

    def wait_ssh(self, deadline):
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                r = subprocess.run(["ssh", *self.master_opts, "-f", "-N", "-o", "BatchMode=yes",
                                    "-o", "ConnectTimeout=30", "-i", str(self.key),
                                    "-p", str(self.ssh_port), "root@127.0.0.1"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=open(self.work / "ssh-master.log", "a"), timeout=90)
                if r.returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            time.sleep(5)
        return False

    def cpu_seconds(self):
        """CPU time QEMU used so far: the run's cost, whatever else the machine runs."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        log(f"QEMU used {self.cpu_seconds():.0f} s of CPU")
        self.ssh("systemctl poweroff --no-block", timeout=60)
        try:
            self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ssh", *self.ssh_opts, "-O", "exit", "-p", str(self.ssh_port),
                        "root@127.0.0.1"], capture_output=True, check=False)


def console_tail(work):
    path = work / "console.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def prometheus_up(port):
    url = (f"http://127.0.0.1:{port}/api/v1/query?"
           + urllib.parse.urlencode({"query": 'up{job="ptnetd"}'}))
    try:
        result = json.load(urllib.request.urlopen(url, timeout=10))["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    return result[0]["value"][1] if result else None


def run_vm(args, work, release, vmlinuz, debs):
    """deploy.fleet_vm: Ansible here, the modules in the VM over SSH."""
    vm = Vm(work, release, vmlinuz)
    vm.make_key(work / "root")
    (work / "inventory.yml").write_text(vm.inventory())
    deadline = steps.T0 + args.timeout
    env = dict(os.environ, ANSIBLE_CONFIG=str(SOURCE / "deploy/ansible/ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_LOCAL_TEMP=str(work / "ansible-local"))
    extra = ["-e", f"ptnetmap_module_deb={next(d for d in debs if 'dkms' in d.name)}",
             "-e", f"ptnetmap_agent_deb={next(d for d in debs if d.name.endswith('_amd64.deb'))}"]

    def playbook(n):
        t, path = time.monotonic(), work / f"run{n}.log"
        # ANSIBLE_LOG_PATH: the same with a time stamp on each line.
        env["ANSIBLE_LOG_PATH"] = str(work / f"run{n}.timed.log")
        with open(path, "w") as out:  # tail -f it to follow the run
            try:
                rc = subprocess.run(["ansible-playbook", "-i", str(work / "inventory.yml"),
                                     "site.yml", *extra], cwd=SOURCE / "deploy/ansible", env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=max(60, deadline - time.monotonic())).returncode
            except subprocess.TimeoutExpired:
                rc = 124
        out = path.read_text(errors="replace")
        log(f"site.yml run {n}: exit {rc} in {time.monotonic() - t:.0f} s: {recap(out)}")
        return rc, out

    vm.boot(work / "root", work / "initramfs.cpio.gz")
    try:
        log(f"booting the root with QEMU/TCG, sshd on 127.0.0.1:{vm.ssh_port}")
        if not check(vm.wait_ssh(min(deadline, time.monotonic() + 900)),
                     "the VM boots and sshd takes this run's key", console_tail(work)):
            return
        log("sshd answers")

        rc1, run1 = playbook(1)
        check(rc1 == 0 and "failed=0" in recap(run1), f"first run of site.yml: {recap(run1)}",
              run1[-4000:])

        _, dkms = vm.ssh("dkms status ptnetmap")
        check(f"{release}, x86_64: installed" in dkms,
              f"DKMS installed ptnetmap.ko for {release}", dkms)
        _, mods = vm.ssh("lsmod; test -d /sys/module/ptnetmap && echo sysfs:ptnetmap")
        check(any(l.startswith("ptnetmap ") for l in mods.splitlines())
              and "sysfs:ptnetmap" in mods, "ptnetmap.ko is loaded (lsmod, /sys/module)", mods)
        _, wiring = vm.ssh("id -nG libvirt-qemu; cat /etc/apparmor.d/local/abstractions/libvirt-qemu")
        check("ptnetmap-vm" in wiring.split() and "/run/ptnetmap/ivshmem/*.sock rw," in wiring,
              "libvirt-qemu is in ptnetmap-vm and AppArmor lets QEMU reach the sockets", wiring)
        _, active = vm.ssh("systemctl is-active ptnetd")
        check(active.strip() == "active", "ptnetd.service is active",
              vm.ssh("journalctl -u ptnetd --no-pager | tail -30")[1])
        _, dp = vm.ssh("grep -x -- --datapath=kernel /etc/ptnetmap/ptnetd.conf; "
                       "ls -l /proc/$(systemctl show -p MainPID --value ptnetd)/fd")
        check("--datapath=kernel" in dp and "/dev/netmap" in dp,
              "ptnetd runs the kernel datapath (holds /dev/netmap)", dp)
        rc, health = vm.ssh("ptctl health")
        check(rc == 0, "ptctl health answers", health)
        rc, made = vm.ssh("ptctl switch create vale0 && ptctl port create vale0 p1 && ptctl port list")
        check(rc == 0 and "p1" in made, "ptctl creates a switch and a port", made)
        _, ports = vm.ssh("python3 -c 'import sys; sys.path.insert(0, \"/root/checks\"); "
                          "import ptkern; print(ptkern.kernel_ports())'")
        check("vale0:p1" in ports, "the module has the port (VALE_LIST lists vale0:p1)", ports)
        up = None
        for _ in range(60):  # the first scrape within the 15 s interval
            up = prometheus_up(vm.prom_port)
            if up == "1" or time.monotonic() > deadline:
                break
            time.sleep(3)
        check(up == "1", "the deployed Prometheus scrapes ptnetd (up == 1)", f"up = {up}")

        rc2, run2 = playbook(2)
        check(rc2 == 0 and "changed=0" in recap(run2) and "failed=0" in recap(run2),
              f"second run changes nothing: {recap(run2)}", run2[-4000:])
        _, failed = vm.ssh("systemctl --failed --no-pager --plain --no-legend")
        log("failed units in the VM: " + (" ".join(l.split()[0] for l in failed.splitlines()
                                                  if l.strip()) or "none"))
    finally:
        vm.stop()


def run_container(args, work, release):
    """deploy.fleet: the root under systemd-nspawn, ansible-playbook -c local in it."""
    extra = {"ptnetmap_module_kernel": release, "ptnetmap_agent_datapath": "fake",
             "ptnetmap_module_require_kvm": False}
    (work / "root/root/extra-vars.json").write_text(json.dumps(extra) + "\n")
    cmd = ["systemd-nspawn", "-q", "-D", str(work / "root"), "--boot", "--private-network",
           "--register=no", "--keep-unit"]
    log("booting the root with systemd-nspawn")
    try:
        subprocess.run(cmd, timeout=args.timeout, check=False, stdin=subprocess.DEVNULL,
                       stdout=open(work / "console.log", "w"), stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        check(False, f"the host finished within {args.timeout} s", console_tail(work))
    res = work / "root/root/results"
    read = lambda name: (res / name).read_text() if (res / name).exists() else ""
    if not check(read("done") != "", "the job ran in the booted host", console_tail(work)):
        return

    run1, run2 = read("run1.log"), read("run2.log")
    check(read("rc1").strip() == "0" and "failed=0" in recap(run1),
          f"first run of site.yml: {recap(run1)}", run1[-4000:])
    check(f"{release}, x86_64: installed" in read("dkms"),
          f"DKMS installed ptnetmap.ko for {release}", read("dkms"))
    check("ptnetmap-vm" in read("libvirt-groups").split()
          and "/run/ptnetmap/ivshmem/*.sock rw," in read("apparmor-local"),
          "libvirt-qemu is in ptnetmap-vm and AppArmor lets QEMU reach the sockets",
          read("libvirt-groups") + read("apparmor-local"))
    check(read("ptnetd-active").strip() == "active", "ptnetd.service is active",
          read("ptnetd.journal")[-2000:])
    check(read("health").strip().endswith("0"), "ptctl health answers", read("health"))
    check(read("ptctl").strip().endswith("0") and "vale0" in read("ptctl"),
          "ptctl creates a switch and a port through the deployed agent", read("ptctl"))
    check(read("prom-up").strip() == "1", "the deployed Prometheus scrapes ptnetd (up == 1)")
    check(read("rc2").strip() == "0" and "changed=0" in recap(run2)
          and "failed=0" in recap(run2),
          f"second run changes nothing: {recap(run2)}", run2[-4000:])
    log("failed units in the container: " + " ".join(read("failed-units").split()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", help="the build folder to run cpack in")
    ap.add_argument("--debs", help="take the .debs from this folder instead")
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--reuse", help="boot the root a --keep run left in this work folder again")
    ap.add_argument("--container", action="store_true",
                    help="boot with systemd-nspawn (native speed, no module load)")
    args = ap.parse_args()

    release, vmlinuz, kroot = lab.lab_kernel()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="ptnm-fleet."))
    try:
        if args.debs and not args.reuse:
            (work / "debs").mkdir()
            for deb in Path(args.debs).glob("ptnetmap*.deb"):
                shutil.copy(deb, work / "debs")
        elif not args.reuse:
            if not args.build:
                ap.error("--build or --debs is needed")
            sh("cpack", "--config", "CPackConfig.cmake", "-B", str(work / "debs"),
               cwd=args.build, stdout=subprocess.DEVNULL)
        debs = sorted((work / "debs").glob("*.deb"))
        if not args.reuse:
            make_root(work / "root", debs, release, kroot, args.container)
        elif args.container:  # the roles as they are now
            shutil.rmtree(work / "root/root/deploy")
            shutil.copytree(SOURCE / "deploy", work / "root/root/deploy")
        shutil.rmtree(work / "root/root/results", ignore_errors=True)
        make_initramfs(work / "initramfs.cpio.gz", release, kroot)
        log(f"root ready ({release})")
        if args.container:
            run_container(args, work, release)
        else:
            run_vm(args, work, release, vmlinuz, debs)
    finally:
        if args.keep or args.reuse:
            log(f"kept {work}")
        elif any(line.split()[1].startswith(str(work)) for line in open("/proc/mounts")):
            log(f"something is still mounted under {work}: left in place")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return steps.verdict()


if __name__ == "__main__":
    steps.run_main("fleet_vm", main)
