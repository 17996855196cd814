#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The lab: run a command inside a VM booted from Debian's kernel, with our module loaded.

These machines cannot load kernel modules, so every kernel test runs in a VM
(see tests/lab/README.md). Two levels use the same code:

  level 1  the lab VM, under TCG, booted from the host with the host's whole
           filesystem shared read-only: `lab.py run -- CMD...`
  level 2  a KVM guest started from inside the lab VM (nested virtualisation):
           `lab.py guest -- CMD...`, run by a job at level 1.

The command runs chrooted into the shared filesystem, so binaries built on the
host run as they are; it exits with the command's status. The lab itself
failing (a module that does not load or unload, a kernel oops or warning, a
timeout) is reported as such on stderr and gives exit status 125.
"""

import argparse
import gzip
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LAB_ERROR = 125
HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent.parent
CACHE = Path(os.environ.get("PTNETMAP_CACHE", Path.home() / ".cache" / "ptnetmap"))

# Kernel modules the initramfs loads before it can reach the host filesystem.
BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p"]

# Lines of the kernel log that mean the kernel is no longer trustworthy.
KERNEL_TROUBLE = re.compile(
    r"(BUG:|WARNING:|Oops|general protection fault|Kernel panic|kernel BUG"
    r"|UBSAN:|KASAN:|refcount_t:|list_(add|del) corruption|INFO: task .* blocked"
    r"|soft lockup|hard LOCKUP|rcu_.* detected stalls|Call Trace:)")


class LabError(Exception):
    """The lab, not the command under test, went wrong."""


def lab_kernel():
    """(release, vmlinuz path, modules root) of the kernel scripts/setup.sh fetched."""
    release_file = CACHE / "kernel-release"
    if not release_file.exists():
        raise LabError(f"no lab kernel in {CACHE}: run scripts/setup.sh first")
    release = release_file.read_text().strip()
    root = CACHE / "kernel" / release
    vmlinuz = root / "boot" / f"vmlinuz-{release}"
    if not vmlinuz.exists():
        raise LabError(f"{vmlinuz} is missing: run scripts/setup.sh again")
    return release, vmlinuz, root


def ensure_depmod(release, root):
    moddir = root / "lib" / "modules" / release
    if not (moddir / "modules.dep").exists():
        subprocess.run(["depmod", "-b", str(root), release], check=True)
    return moddir


def boot_module_files(release, root):
    """Paths of BOOT_MODULES and their dependencies, in load order."""
    files = []
    for module in BOOT_MODULES:  # one per call: more names would be parameters
        out = subprocess.run(
            ["modprobe", "-d", str(root), "-S", release, "--show-depends", module],
            check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            words = line.split()
            if words and words[0] == "insmod" and words[1] not in files:
                files.append(words[1])
    return files


def ensure_initramfs():
    """Build (once, cached by content) the busybox initramfs both levels boot."""
    release, _, root = lab_kernel()
    ensure_depmod(release, root)
    modules = boot_module_files(release, root)
    init = (HERE / "init.sh").read_bytes()
    busybox = Path("/bin/busybox")
    key = hashlib.sha256(init + release.encode() + "\n".join(modules).encode()
                         + str(busybox.stat().st_size).encode()).hexdigest()[:16]
    image = CACHE / "lab" / f"initramfs-{release}-{key}.cpio.gz"
    if image.exists():
        return image
    image.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "root"
        (tree / "bin").mkdir(parents=True)
        (tree / "lib" / "modules").mkdir(parents=True)
        shutil.copy2(busybox, tree / "bin" / "busybox")
        shutil.copy2(HERE / "init.sh", tree / "init")
        os.chmod(tree / "init", 0o755)
        order = []
        for path in modules:
            shutil.copy2(path, tree / "lib" / "modules" / Path(path).name)
            order.append(Path(path).name)
        (tree / "lib" / "modules" / "boot-order").write_text("\n".join(order) + "\n")
        names = subprocess.run(["find", "."], cwd=tree, check=True,
                               capture_output=True).stdout
        archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=tree,
                                 input=names, check=True, capture_output=True).stdout
        partial = image.with_suffix(f".{os.getpid()}.tmp")
        with gzip.open(partial, "wb", compresslevel=1) as f:
            f.write(archive)
        partial.rename(image)
    return image


def write_job(results, command, env, cwd):
    """The script the VM runs: the command, its environment, its status."""
    lines = ["# written by tests/lab/lab.py",
             f"cd {shlex.quote(cwd)} 2>/dev/null || cd /",
             "export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "export LAB_RESULTS=/tmp/lab-results TMPDIR=/tmp"]
    lines += [f"export {shlex.quote(k)}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(f"( {shlex.join(command)} )")
    lines.append("echo $? > /tmp/lab-results/rc")
    (results / "job.sh").write_text("\n".join(lines) + "\n")


def paths_to_keep(args):
    """Top folders under /tmp or /run that the job uses: the VM mounts fresh
    tmpfs there, so these are bound back over it (a clone in /tmp, say)."""
    candidates = [SOURCE_DIR, Path.cwd(), *(Path(m).resolve() for m in args.module)]
    candidates += [Path(a) for a in args.command if a.startswith("/")]
    return tmp_tops(candidates)


def tmp_tops(candidates):
    """The top folders under /tmp or /run of these paths (for lab.keep=)."""
    keep = []
    for path in candidates:
        parts = Path(path).parts
        if len(parts) >= 3 and parts[1] in ("tmp", "run"):
            top = "/" + "/".join(parts[1:3])
            if top not in keep and Path(top).is_dir():
                keep.append(top)
    return keep


def qemu_command(args, level, results, initramfs, vmlinuz, moddir_root, monitor):
    modules = ",".join(str(Path(m).resolve()) for m in args.module)
    # no_timer_check: under a loaded host, TCG can miss the boot-time check
    # of the IO-APIC timer and the kernel panics before init runs.
    append = ["console=ttyS0", "quiet", "panic=-1", "oops=panic", "no_timer_check",
              f"lab.level={level}", f"lab.modules={modules}",
              f"lab.keep={','.join(paths_to_keep(args))}",
              f"lab.kvm={1 if args.kvm else 0}",
              f"lab.moddir={moddir_root}"]
    if level == 1:
        accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
        # A periodic tick (the local APIC's periodic mode, re-armed by QEMU
        # itself) instead of one-shot timers: TCG now and then loses one of
        # a CPU's one-shot timer interrupts, and then no timer on that CPU
        # ever fires again (see TIMER_LOST); a lost periodic tick is made up
        # by the next. Timers of the lab VM get the tick's resolution (4 ms).
        append += ["highres=off", "nohz=off"]
    else:
        accel = ["-accel", "kvm", "-cpu", "host"]
    cmd = ["qemu-system-x86_64", *accel, "-smp", str(args.smp), "-m", str(args.memory),
           "-kernel", str(vmlinuz), "-initrd", str(initramfs),
           "-append", " ".join(append),
           "-nodefaults", "-display", "none", "-serial", "stdio",
           "-monitor", f"unix:{monitor},server=on,wait=off",
           "-no-reboot",
           "-virtfs", "local,path=/,mount_tag=host,security_model=passthrough,"
                      "readonly=on,multidevs=remap",
           "-virtfs", f"local,path={results},mount_tag=results,security_model=passthrough,"
                      "multidevs=remap"]
    for extra in args.qemu_arg:
        cmd += shlex.split(extra)
    return cmd


# The emulator (TCG running the lab VM, with emulated SVM under the nested
# guests) sometimes stops delivering one virtual CPU's local timer interrupts:
# RCU then reports that its kthread's timer never fired although every CPU
# passed a quiescent state. Nothing in the VM can recover from that, and no
# code of ours runs with interrupts off for that long (that would be a
# different report, a CPU stall or a soft lockup), so the VM is stopped at
# once and booted again rather than left to run into the timeout.
TIMER_LOST = re.compile(r"rcu: .*kthread timer wakeup didn't happen")
TIMER_LOST_RETRIES = 1


def stream_console(proc, log, echo, timer_lost):
    """Copy the VM's console to `log`, echoing the job's part as it comes.
    Kills the VM and sets `timer_lost` when its timer interrupts stop."""
    in_job = False
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode(errors="replace").replace("\r", "")
        log.append(line)
        if TIMER_LOST.search(line) and not timer_lost.is_set():
            timer_lost.set()
            proc.kill()
        if line.startswith("LAB: job start"):
            in_job = True
            continue
        if line.startswith("LAB: job end"):
            in_job = False
            continue
        if echo and (in_job or line.startswith("LAB-ERROR")):
            sys.stdout.write(line)
            sys.stdout.flush()


def trouble_in(log_text, after_marker):
    """Kernel-log lines after `after_marker` that show an oops or a warning."""
    start = log_text.find(after_marker)
    tail = log_text[start:] if start >= 0 else log_text
    lines = tail.splitlines()
    for i, line in enumerate(lines):
        if KERNEL_TROUBLE.search(line):
            return "\n".join(lines[max(0, i - 5):i + 40])
    return None


class EarlyReset(LabError):
    """A level-2 guest reset before its init ran the job (QEMU exits 0 with
    -no-reboot). Seen now and then when two nested guests boot at once under
    the lab's emulated SVM; nothing of ours has run yet, so it is retried."""


EARLY_RESET_RETRIES = 2


class TimerLost(LabError):
    """The VM's timer interrupts stopped on one CPU (see TIMER_LOST)."""


# The knobs of the e2e tests (PAIR_VALE_PACKETS=N ctest -R e2e.vm_pair, ...):
# variables with these prefixes reach the job, and through a nested
# `lab.py guest` its guests, without an --env for each.
FORWARDED_ENV = ("PAIR_", "NETMAP_MODE_", "NETMAP_VALE_")


def run_vm(args, level):
    """Boot one VM running args.command; returns the command's exit status."""
    release, vmlinuz, root = lab_kernel()
    ensure_depmod(release, root)
    initramfs = ensure_initramfs()
    for module in args.module:
        if not Path(module).exists():
            raise LabError(f"module {module} does not exist: build it first "
                           "(cmake --build build --target kmod)")
    keep = args.results is not None
    results = Path(args.results or tempfile.mkdtemp(prefix=f"lab{level}-"))
    results.mkdir(parents=True, exist_ok=True)
    for stale in ("rc", "status", "dmesg", "output", "kallsyms"):
        (results / stale).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
    env.update(kv.split("=", 1) for kv in args.env)
    env["LAB_LEVEL"] = str(level)
    if level == 1:
        # When the lab VM will be stopped: a nested `lab.py guest` keeps
        # within it, so that its own timeout (with the level-2 console and
        # job output) is reported rather than a silent outer one.
        env["LAB_DEADLINE"] = f"{time.time() + args.timeout:.0f}"
    write_job(results, args.command, env, os.getcwd())

    monitor = Path(tempfile.mkdtemp(prefix="labmon-")) / "monitor.sock"
    cmd = qemu_command(args, level, results, initramfs, vmlinuz, root / "lib" / "modules",
                       monitor)
    if args.verbose:
        print("lab:", shlex.join(cmd), file=sys.stderr)
    log = []
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    timer_lost = threading.Event()
    reader = threading.Thread(target=stream_console,
                              args=(proc, log, not args.quiet, timer_lost))
    reader.start()
    try:
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            try:
                cpus = vcpu_report(monitor, results / "kallsyms")
            except Exception as err:  # a report, never a reason to keep the VM
                cpus = f"\n(no CPU state: {err!r})\n"
            proc.kill()
            proc.wait()
            reader.join()
            raise LabError(f"timeout: the level-{level} VM did not finish within "
                           f"{args.timeout} s; last console lines:\n" + "".join(log[-40:])
                           + cpus + job_output_tail(results))
        reader.join()
        if timer_lost.is_set():
            raise TimerLost(f"the level-{level} VM lost its timer interrupts after "
                            f"{time.monotonic() - started:.0f} s:\n"
                            + "".join(line for line in log[-40:] if TIMER_LOST.search(line))
                            + job_output_tail(results))
        elapsed = time.monotonic() - started
        console = "".join(log)
        if args.console_log:
            Path(args.console_log).write_text(console)

        status_file = results / "status"
        status = status_file.read_text().strip() if status_file.exists() else ""
        dmesg_file = results / "dmesg"
        dmesg = dmesg_file.read_text(errors="replace") if dmesg_file.exists() else ""
        if not status:
            said = [line for line in log if line.startswith("LAB-ERROR")]
            if said:
                raise LabError(f"level-{level} VM: {said[-1][len('LAB-ERROR: '):].strip()}")
            trouble = trouble_in(console, "LAB: loading modules")
            if trouble:
                raise LabError(f"kernel crash in the level-{level} VM:\n{trouble}")
            if level == 2 and proc.returncode == 0 and "LAB: job start" not in console:
                raise EarlyReset(f"the level-2 VM reset before its job started "
                                 f"({len(log)} console lines)")
            raise LabError(f"the level-{level} VM stopped before the job finished "
                           f"(qemu exit {proc.returncode}); console:\n" + "".join(log[-60:]))
        if status.startswith("lab-error"):
            raise LabError(f"level-{level} VM: {status[len('lab-error: '):]}\n"
                           + (dmesg[-3000:] if dmesg else ""))
        trouble = trouble_in(dmesg, "LAB: loading modules")
        if trouble:
            raise LabError(f"kernel oops or warning in the level-{level} VM during the "
                           f"job:\n{trouble}")
        rc_file = results / "rc"
        if not rc_file.exists():
            raise LabError("the job left no exit status")
        rc = int(rc_file.read_text().strip() or LAB_ERROR)
        if args.quiet:
            sys.stdout.write((results / "output").read_text(errors="replace"))
        if args.verbose:
            print(f"lab: level-{level} VM finished in {elapsed:.1f} s, job status {rc}",
                  file=sys.stderr)
        return rc
    finally:
        shutil.rmtree(monitor.parent, ignore_errors=True)
        if not keep:
            shutil.rmtree(results, ignore_errors=True)


def kernel_symbol(address, kallsyms):
    """"name+0xoff [module]" of a kernel text address, from the VM's own
    /proc/kallsyms (init.sh copies it); None if it is not known."""
    best = None
    try:
        with open(kallsyms) as f:
            for line in f:
                fields = line.split()
                value = int(fields[0], 16)
                if value <= address and (best is None or value > best[0]):
                    best = (value, " ".join(fields[2:]))
    except (OSError, ValueError, IndexError):
        return None
    if best is None or address - best[0] > 0x100000:
        return None
    name, _, module = best[1].partition(" ")
    return f"{name}+{address - best[0]:#x}" + (f" {module}" if module else "")


def vcpu_report(monitor, kallsyms):
    """What each virtual CPU of a VM that stopped answering was doing: its
    instruction pointer (as a kernel symbol when it is one), read through
    QEMU's monitor. Tells a CPU idle without timer interrupts from one
    spinning in the kernel."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(monitor))
            s.sendall(b"info registers -a\n")
            data, deadline = b"", time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
                if b"RIP=" in data and data.rstrip().endswith(b"(qemu)"):
                    break
    except OSError as err:
        return f"\n(no CPU state: monitor: {err})\n"
    lines = []
    for cpu, rip in enumerate(re.findall(rb"RIP=([0-9a-f]{16})", data)):
        address = int(rip, 16)
        where = kernel_symbol(address, kallsyms) if address >= 1 << 63 else "user space"
        lines.append(f"  CPU {cpu}: RIP {address:#018x} {where or '(unknown)'}\n")
    return "\nCPU state when stopped:\n" + "".join(lines) if lines else ""


def job_output_tail(results, lines=30):
    """The last lines the job printed, for a VM that never finished."""
    output = results / "output"
    if not output.exists():
        return ""
    # Quoted, so that scripts scanning this report for their own result
    # lines do not count them twice.
    tail = output.read_text(errors="replace").splitlines()[-lines:]
    return "\njob output so far:\n" + "".join(f"> {line}\n" for line in tail)


def default_module():
    for build in (os.environ.get("PTNETMAP_BUILD"), SOURCE_DIR / "build"):
        if build and (Path(build) / "kmod" / "ptnetmap.ko").exists():
            return [str(Path(build) / "kmod" / "ptnetmap.ko")]
    return []


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, help_text in (("run", "boot the lab VM (level 1) and run a command in it"),
                            ("guest", "inside the lab VM: boot a level-2 KVM guest")):
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("--module", action="append", default=None,
                       help="kernel module to load first (default: build/kmod/ptnetmap.ko "
                            "in the lab VM, none in a guest); repeatable")
        p.add_argument("--no-module", action="store_true", help="load no module of ours")
        p.add_argument("--kvm", action="store_true", help="load KVM inside the VM")
        p.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")
        p.add_argument("--memory", type=int, default=2048 if verb == "run" else 384,
                       help="MiB of guest memory")
        p.add_argument("--smp", type=int, default=2 if verb == "run" else 1)
        p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                       help="environment variable for the command; repeatable")
        p.add_argument("--qemu-arg", action="append", default=[],
                       help="extra QEMU arguments (shell-split); repeatable")
        p.add_argument("--results", help="keep the results folder here")
        p.add_argument("--console-log", help="write the whole console to this file")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="print the command's output at the end instead of live")
        p.add_argument("-v", "--verbose", action="store_true")
        p.add_argument("command", nargs="+", help="command and arguments (after --)")
    args = parser.parse_args(argv)
    if args.no_module:
        args.module = []
    elif args.module is None:
        args.module = default_module() if args.verb == "run" else []
    return args


# Seconds a nested guest leaves to the lab VM for reporting its own failure.
DEADLINE_MARGIN = 45


def fit_deadline(args):
    """Shortens a level-2 guest's timeout to end before the lab VM's own
    (LAB_DEADLINE); a retry that no longer fits is an error."""
    deadline = os.environ.get("LAB_DEADLINE")
    if not deadline:
        return
    left = float(deadline) - time.time() - DEADLINE_MARGIN
    if left < 30:
        raise LabError(f"no time left for the level-2 guest: the lab VM stops in "
                       f"{left + DEADLINE_MARGIN:.0f} s")
    if left < args.timeout:
        print(f"lab: level-2 timeout {args.timeout:.0f} s cut to {left:.0f} s "
              "to end before the lab VM's", file=sys.stderr)
        args.timeout = left


def main(argv):
    args = parse_args(argv)
    level = 1 if args.verb == "run" else 2
    if level == 2 and os.environ.get("LAB_LEVEL") != "1":
        print("lab: `guest` runs inside the lab VM (LAB_LEVEL=1)", file=sys.stderr)
        return LAB_ERROR
    if level == 2 and not Path("/dev/kvm").exists():
        print("lab: no /dev/kvm in the lab VM: run the job with `lab.py run --kvm`",
              file=sys.stderr)
        return LAB_ERROR
    try:
        resets = timer_losses = 0
        while True:
            if level == 2:
                fit_deadline(args)
            try:
                return run_vm(args, level)
            except EarlyReset as err:
                resets += 1
                if resets > EARLY_RESET_RETRIES:
                    raise
                print(f"lab: {err}; booting it again", file=sys.stderr)
            except TimerLost as err:
                timer_losses += 1
                if timer_losses > TIMER_LOST_RETRIES:
                    raise
                print(f"lab: {err}lab: running the job again in a new VM", file=sys.stderr)
    except LabError as err:
        print(f"LAB FAILURE: {err}", file=sys.stderr)
        return LAB_ERROR
    except subprocess.CalledProcessError as err:
        print(f"LAB FAILURE: {shlex.join(err.cmd)} failed: {err.stderr or ''}",
              file=sys.stderr)
        return LAB_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
