#!/usr/bin/env python3
"""deploy.fleet: the site playbook against a Debian 12 host booted with systemd.

The lab VM cannot take a real playbook run (its root is the host's, read-only,
and it has no systemd), so this test makes a host of its own:

1. A clean Debian 12 root (the debootstrap tarball install_test.sh caches)
   gets systemd, python3-apt, ansible-core and the lab kernel's modules; the
   ptnetmap packages are only copied in, as an operator's controller would.
2. The lab kernel boots it under QEMU/TCG: a small busybox initramfs mounts
   the root over 9p (read-write) and hands over to systemd.
3. A oneshot unit in the VM runs `ansible-playbook -c local site.yml` (all
   four roles, the packages from the copied .debs) twice, then checks the
   result and powers off.

Checks (one line each, exit 1 if any failed): the first run has no failed
task; DKMS installed the module for the lab kernel and it is loaded; the
libvirt wiring is in place (a libvirt-qemu user and libvirt's AppArmor
abstraction stand in for libvirt); ptnetd
is active and `ptctl health` answers; ptctl can create a switch and a port;
Prometheus scrapes the agent (up == 1); the second run changes nothing.

Ansible under TCG is slow (on a loaded 2-core machine, well over an hour for
the two runs). `--container` boots the same root with systemd-nspawn instead,
at native speed, on a kernel that cannot load modules: the module is built
for the lab kernel (`ptnetmap_module_kernel`, as for a kernel installed but
not booted yet, so nothing is loaded) and the agent uses the fake datapath;
everything else is the same.

    tests/deploy/fleet_vm.py --build BUILD_DIR [--container]
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
sys.path.insert(0, str(SOURCE / "tests" / "lab"))
import lab  # noqa: E402  (the lab kernel, its boot modules)

CACHE = lab.CACHE / "deploy"
T0 = time.monotonic()
FAILURES = []

INIT = r"""#!/bin/busybox sh
# Mounts the host's root over 9p and starts systemd in it.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /newroot
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r mod; do insmod "/lib/modules/$mod"; done < /lib/modules/boot-order
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=262144 root /newroot || {
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


def log(msg):
    print(f"[deploy.fleet {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(cond, what, detail=""):
    log(("ok    " if cond else "FAIL  ") + what + ("" if cond or not detail else f": {detail}"))
    if not cond:
        FAILURES.append(what)
    return cond


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


def make_root(root, debs, release, kroot):
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
        sh(*chroot, "apt-get", "install", "-y", "-q", "--no-install-recommends",
           "systemd", "systemd-sysv", "udev", "kmod", "iproute2", "procps",
           "python3", "python3-apt", "ansible-core", f"linux-headers-{release}",
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--reuse", help="boot the root a --keep run left in this work folder again")
    ap.add_argument("--container", action="store_true",
                    help="boot with systemd-nspawn (native speed, no module load)")
    args = ap.parse_args()

    release, vmlinuz, kroot = lab.lab_kernel()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="ptnm-fleet."))
    try:
        if not args.reuse:
            sh("cpack", "--config", "CPackConfig.cmake", "-B", str(work / "debs"),
               cwd=args.build, stdout=subprocess.DEVNULL)
            debs = sorted((work / "debs").glob("*.deb"))
            make_root(work / "root", debs, release, kroot)
        else:  # the roles as they are now
            shutil.rmtree(work / "root/root/deploy")
            shutil.copytree(SOURCE / "deploy", work / "root/root/deploy")
        shutil.rmtree(work / "root/root/results", ignore_errors=True)
        make_initramfs(work / "initramfs.cpio.gz", release, kroot)
        log(f"root ready ({release})")

        extra = {}
        if args.container:
            extra = {"ptnetmap_module_kernel": release, "ptnetmap_agent_datapath": "fake",
                     "ptnetmap_module_require_kvm": False}
        (work / "root/root/extra-vars.json").write_text(json.dumps(extra) + "\n")
        if args.container:
            cmd = ["systemd-nspawn", "-q", "-D", str(work / "root"), "--boot", "--private-network",
                   "--register=no", "--keep-unit"]
            console = open(work / "console.log", "w")
        else:
            cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
                   "-smp", "2", "-m", "2048", "-kernel", str(vmlinuz),
                   "-initrd", str(work / "initramfs.cpio.gz"),
                   "-append", "console=ttyS0 panic=-1 no_timer_check quiet systemd.show_status=0",
                   "-nodefaults", "-display", "none", "-serial", f"file:{work}/console.log",
                   "-monitor", "none", "-no-reboot", "-device", "virtio-rng-pci",
                   "-virtfs", f"local,path={work / 'root'},mount_tag=root,"
                              "security_model=passthrough,multidevs=remap"]
            console = subprocess.DEVNULL
        log("booting the root with " + ("systemd-nspawn" if args.container else "QEMU/TCG"))
        try:
            subprocess.run(cmd, timeout=args.timeout, check=False, stdin=subprocess.DEVNULL,
                           stdout=console, stderr=subprocess.STDOUT)
        except subprocess.TimeoutExpired:
            check(False, f"the host finished within {args.timeout} s",
                  (work / "console.log").read_text(errors="replace")[-3000:])
        res = work / "root/root/results"
        read = lambda name: (res / name).read_text() if (res / name).exists() else ""
        if not check(read("done") != "", "the job ran in the booted host",
                     (work / "console.log").read_text(errors="replace")[-3000:]):
            return 1

        run1, run2 = read("run1.log"), read("run2.log")
        check(read("rc1").strip() == "0" and "failed=0" in recap(run1),
              f"first run of site.yml: {recap(run1)}", run1[-4000:])
        check(f"{release}, x86_64: installed" in read("dkms"),
              f"DKMS installed ptnetmap.ko for {release}", read("dkms"))
        if not args.container:
            check(any(l.startswith("ptnetmap ") for l in read("lsmod").splitlines()),
                  "ptnetmap.ko is loaded (modules-load.d, modprobe)")
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
        log("failed units in the VM: " + " ".join(read("failed-units").split()))
    finally:
        if args.keep or args.reuse:
            log(f"kept {work}")
        elif any(line.split()[1].startswith(str(work)) for line in open("/proc/mounts")):
            log(f"something is still mounted under {work}: left in place")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if FAILURES:
        log(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
