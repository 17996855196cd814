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
              f"lab.root={'switch' if args.switch_root else 'chroot'}",
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
           # A reset stops the VM, paused, so that watch_shutdown can read
           # where its CPUs were; a poweroff too.
           "-no-reboot", "-action", "shutdown=pause",
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
EMULATOR_FAULT_RETRIES = 1


def stream_console(proc, log, echo, timer_lost, on_lockup):
    """Copy the VM's console to `log`, echoing the job's part as it comes.
    Kills the VM and sets `timer_lost` when its timer interrupts stop; calls
    on_lockup() at the first soft lockup the VM's kernel reports."""
    in_job = False
    lockup = False
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode(errors="replace").replace("\r", "")
        log.append(line)
        if TIMER_LOST.search(line) and not timer_lost.is_set():
            timer_lost.set()
            proc.kill()
        if SOFT_LOCKUP.search(line) and not lockup:
            lockup = True
            on_lockup()
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


class EmulatorFault(LabError):
    """The emulator under the lab VM broke a rule of the CPU it emulates (see
    TIMER_LOST and interrupt_taken_while_masked). Nothing a job does can cause
    that, so the job is run once more in a new VM; a second fault fails."""


class TimerLost(EmulatorFault):
    """The VM's timer interrupts stopped on one CPU (see TIMER_LOST)."""


# How a kernel log or a symbolized address shows code of our module.
OUR_MODULE = "[ptnetmap"


def silent_reset_is_emulators(cpu_state):
    """Whether a level-2 guest that reset with no panic or oops on its
    console (`cpu_state` being vcpu_report's account of the reset) was reset
    by the emulator. A kernel that resets itself (panic=-1, sysrq, reboot)
    is in its restart code, and a fault in our module shows [ptnetmap]: both
    are real failures. Anything else is a triple fault at a random place,
    which the lab meets now and then in nested guests under TCG's SVM (the
    lab VM's KVM itself has been seen to crash handling one)."""
    if OUR_MODULE in cpu_state:
        return False
    return not re.search(r"(machine_restart|emergency_restart|machine_power_off"
                         r"|kernel_restart|panic)\w*\+0x", cpu_state)


def lab_vm_reset_is_emulators(cpu_state):
    """Whether the lab VM (level 1), reset with no panic or oops on its
    console, was reset by the emulator: a CPU was inside VMRUN, running a
    nested guest (KVM's __svm_vcpu_run), so the triple fault happened in
    TCG's emulated SVM world switch. Seen in CI (2026-11-25) with the
    faulting address on the double-fault entry of the IDT (CR2). Any reset
    that also passes through our module or the kernel's restart code is
    not (silent_reset_is_emulators)."""
    return ("__svm_vcpu_run+0x" in cpu_state
            and silent_reset_is_emulators(cpu_state))


# TCG now and then fails the kernel's live patching of its own code. KVM
# starting a guest flips static keys: text_poke_bp writes an int3 at each
# site, then waits with an IPI for every CPU (so the patching CPU spins in
# smp_call_function_many_cond). Two ways it was seen to end, for good: a CPU
# taking the breakpoint exception at the first instruction of the handler
# itself (INT3_LOOP, reported by the kernel as the other CPU's soft lockup),
# and a CPU held on the int3 of the site, taking neither it nor the IPI (no
# soft lockup report: the VM runs into its timeout). The CPUs' state, read
# through the monitor at the lockup or the timeout, tells them from a
# lockup of ours (stuck_cpus_report).
SOFT_LOCKUP = re.compile(r"watchdog: BUG: soft lockup")
INT3_LOOP = re.compile(r"RIP 0x[0-9a-f]+ asm_exc_int3\+0x0\b")


def int3_fault(level, log, cpus):
    return EmulatorFault(f"a CPU of the level-{level} VM is stuck on a breakpoint (the "
                         "emulator failed the kernel's code patching); last console "
                         "lines:\n" + "".join(log[-20:]) + cpus)


def interrupt_taken_while_masked(trouble):
    """True for a kernel crash in which timer interrupts nested inside timer
    interrupt handlers until the interrupt stack overflowed. Linux runs hard
    interrupt handlers with interrupts disabled, so only a CPU delivering
    interrupts while they are masked gets there: TCG does, now and then, when
    its emulated SVM has just left a nested guest (seen with the lab VM's
    periodic tick, in the process running a level-2 guest)."""
    return ("IRQ stack guard page was hit" in trouble
            and trouble.count("sysvec_apic_timer_interrupt") >= 4
            and OUR_MODULE not in trouble)


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
    for stale in ("rc", "status", "dmesg", "output", "kallsyms", FAULTS_FILE, HOST_CLOCK_FILE):
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
    clock_stop = threading.Event()
    if level == 1:
        threading.Thread(target=keep_host_clock, args=(results, clock_stop),
                         daemon=True).start()
    try:
        return watch_vm(args, level, cmd, results, monitor, log, started)
    finally:
        clock_stop.set()
        shutil.rmtree(monitor.parent, ignore_errors=True)
        if not keep:
            shutil.rmtree(results, ignore_errors=True)


def watch_vm(args, level, cmd, results, monitor, log, started):
    """Runs the VM of run_vm to its end and tells how it ended."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    timer_lost = threading.Event()
    breakpoint_fault = []

    def on_lockup():
        cpus, emulators = stuck_cpus_report(monitor, results / "kallsyms")
        if emulators:
            breakpoint_fault.append(cpus)
            proc.kill()

    reader = threading.Thread(target=stream_console,
                              args=(proc, log, not args.quiet, timer_lost, on_lockup))
    reader.start()
    reset_report = []
    watcher = threading.Thread(target=watch_shutdown,
                               args=(proc, monitor, results, results / "kallsyms",
                                     reset_report), daemon=True)
    watcher.start()
    try:
        wait_for_vm(proc, args.timeout, level)
    except subprocess.TimeoutExpired:
        try:
            cpus, emulators = stuck_cpus_report(monitor, results / "kallsyms")
        except Exception as err:  # a report, never a reason to keep the VM
            cpus, emulators = f"\n(no CPU state: {err!r})\n", False
        proc.kill()
        proc.wait()
        reader.join()
        if emulators:
            breakpoint_fault.append(cpus)
        if breakpoint_fault:
            raise int3_fault(level, log, breakpoint_fault[0])
        raise LabError(f"timeout: the level-{level} VM did not finish within "
                       f"{args.timeout:.0f} s; last console lines:\n" + "".join(log[-40:])
                       + cpus + job_output_tail(results))
    reader.join()
    watcher.join(timeout=10)
    if breakpoint_fault:
        raise int3_fault(level, log, breakpoint_fault[0])
    if timer_lost.is_set():
        raise TimerLost(f"the level-{level} VM lost its timer interrupts after "
                        f"{time.monotonic() - started:.0f} s:\n"
                        + "".join(line for line in log[-40:] if TIMER_LOST.search(line))
                        + job_output_tail(results))
    elapsed = time.monotonic() - started
    console = "".join(log)
    if args.console_log:
        Path(args.console_log).write_text(console)

    status = job_status(results)
    dmesg_file = results / "dmesg"
    dmesg = dmesg_file.read_text(errors="replace") if dmesg_file.exists() else ""
    if not status:
        said = [line for line in log if line.startswith("LAB-ERROR")]
        if said:
            raise LabError(f"level-{level} VM: {said[-1][len('LAB-ERROR: '):].strip()}")
        trouble = trouble_in(console, "LAB: loading modules")
        if trouble and interrupt_taken_while_masked(trouble):
            raise EmulatorFault(f"the level-{level} VM took timer interrupts while "
                                f"they were masked, until its interrupt stack "
                                f"overflowed:\n{trouble}")
        if trouble:
            raise LabError(f"kernel crash in the level-{level} VM:\n{trouble}")
        if level == 2 and proc.returncode == 0 and "LAB: job start" not in console:
            raise EarlyReset(f"the level-2 VM reset before its job started "
                             f"({len(log)} console lines)")
        if level == 2 and proc.returncode == 0 and silent_reset_is_emulators(
                "".join(reset_report)):
            raise EmulatorFault("the level-2 VM reset silently (nothing on its console) "
                                "before the job finished; console:\n"
                                + "".join(log[-20:]) + "".join(reset_report))
        if level == 1 and proc.returncode == 0 and lab_vm_reset_is_emulators(
                "".join(reset_report)):
            raise EmulatorFault("the lab VM reset silently while running a nested guest "
                                "(emulated SVM); console:\n"
                                + "".join(log[-20:]) + "".join(reset_report))
        raise LabError(f"the level-{level} VM reset before the job finished "
                       f"(qemu exit {proc.returncode}); console:\n" + "".join(log[-60:])
                       + "".join(reset_report))
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
    faults = results / FAULTS_FILE
    if rc != 0 and faults.exists():
        raise EmulatorFault("a level-2 guest of the job met a fault of the emulator:\n"
                            + faults.read_text(errors="replace") + job_output_tail(results))
    if args.quiet:
        sys.stdout.write((results / "output").read_text(errors="replace"))
    if args.verbose:
        print(f"lab: level-{level} VM finished in {elapsed:.1f} s, job status {rc}",
              file=sys.stderr)
    return rc


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


def monitor_command(monitor, command, timeout=5):
    """Commands (one per line) to QEMU's human monitor; the answers as text."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(monitor))
        s.sendall(command.encode() + b"\n")
        data, deadline = b"", time.monotonic() + timeout
        # The banner's prompt, then one after each answer.
        prompts = 2 + command.count("\n")
        while data.count(b"(qemu)") < prompts and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def cpu_snapshot(monitor):
    """Each virtual CPU's instruction pointer and the first bytes of the
    code there (None where unreadable), and the monitor's whole register
    dump. Raises OSError when the monitor does not answer."""
    data = monitor_command(monitor, "info registers -a")
    cpus = []
    for cpu, rip in enumerate(re.findall(r"RIP=([0-9a-f]{16})", data)):
        address = int(rip, 16)
        code = None
        if address >= 1 << 63:
            # `x` reads through the monitor's current CPU's page tables.
            dump = monitor_command(monitor, f"cpu {cpu}\nx /8bx {address:#x}")
            found = re.findall(r"^[0-9a-f]+:((?: +0x[0-9a-f]{2})+)", dump, re.M)
            if found:
                code = bytes(int(b, 16) for b in found[0].split())
        cpus.append((address, code))
    return cpus, data


def vcpu_report(monitor, kallsyms, title="CPU state when stopped", raw=False,
                snapshot=None):
    """What each virtual CPU of a VM was doing: its instruction pointer (as a
    kernel symbol when it is one) and the code there, read through QEMU's
    monitor (or taken from `snapshot`, cpu_snapshot's answer). Tells a CPU
    idle without timer interrupts from one spinning in the kernel; with raw,
    the whole register dump follows."""
    try:
        cpus, data = snapshot or cpu_snapshot(monitor)
    except OSError as err:
        return f"\n(no CPU state: monitor: {err})\n"
    lines = []
    for cpu, (address, code) in enumerate(cpus):
        where = kernel_symbol(address, kallsyms) if address >= 1 << 63 else "user space"
        text = f" [{code.hex(' ')}]" if code else ""
        lines.append(f"  CPU {cpu}: RIP {address:#018x} {where or '(unknown)'}{text}\n")
    if not lines:
        return f"\n(no CPU state in the monitor's answer: {data[-300:]!r})\n"
    dump = ""
    if raw:
        # General, segment and control registers; not the FPU's or SSE's.
        registers = [line for line in data.splitlines()
                     if "=" in line and not line.startswith(
                         ("QEMU", "(qemu)", "DR", "FCW", "FPR", "XMM", "YMM", "ZMM"))]
        dump = "".join(f"    {line}\n" for line in registers)
    return f"\n{title}:\n" + "".join(lines) + dump


INT3 = 0xcc


def held_at_breakpoint(snapshots):
    """The CPUs that sat on an int3 instruction in every one of
    `snapshots` (cpu_snapshot's lists, taken a moment apart). A CPU takes
    the breakpoint exception as soon as it reaches one, so one that stays
    there is not executing: TCG failing the kernel's live patching of its
    own code (text_poke_bp puts an int3 at the site, then waits with an IPI
    for every CPU, the held one included)."""
    first = snapshots[0]
    return [cpu for cpu, (address, code) in enumerate(first)
            if code and code[0] == INT3
            and all(len(s) > cpu and s[cpu][0] == address for s in snapshots[1:])]


def stuck_cpus_report(monitor, kallsyms):
    """vcpu_report of a VM that stopped making progress, and whether its
    CPUs show the emulator's fault with the breakpoint (INT3_LOOP, or a CPU
    held at an int3: held_at_breakpoint)."""
    try:
        snapshots = [cpu_snapshot(monitor)]
        for _ in range(2):
            time.sleep(0.5)
            snapshots.append(cpu_snapshot(monitor))
    except OSError as err:
        return f"\n(no CPU state: monitor: {err})\n", False
    report = vcpu_report(monitor, kallsyms, snapshot=snapshots[-1])
    held = held_at_breakpoint([cpus for cpus, _ in snapshots])
    if held:
        report += "".join(f"  CPU {cpu} stayed on that int3 for a second\n" for cpu in held)
    return report, bool(held or INT3_LOOP.search(report))


def watch_shutdown(proc, monitor, results, kallsyms, report):
    """QEMU pauses rather than exits when its VM powers off or resets
    (-action shutdown=pause). Polls for that; when the job has not written
    its status (a reset: a triple fault, or a panic), appends the CPUs'
    state at that moment to `report`. Then ends QEMU."""
    status = ""
    while proc.poll() is None:
        time.sleep(0.5)
        try:
            status = monitor_command(monitor, "info status")
        except OSError:
            continue
        if "paused" not in status and "shutdown" not in status:
            continue
        if not job_status(results):
            report.append(vcpu_report(monitor, kallsyms, "CPU state at the reset", raw=True))
        try:
            monitor_command(monitor, "quit", timeout=2)
        except OSError:
            pass
        return
    if not job_status(results):
        last = status.strip().splitlines()[-2:] if status else ["(none)"]
        report.append(f"\nQEMU exited by itself, not paused; its last status: {last}\n")


def job_status(results):
    """What init.sh wrote as the VM's end ("ok", "lab-error: ..."); empty
    while the VM has not got there."""
    status = results / "status"
    return status.read_text().strip() if status.exists() else ""


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
        p.add_argument("--switch-root", action="store_true",
                       help="run the command with the host's filesystem as the root of the "
                            "mount namespace, not in a chroot (for AppArmor; see init.sh)")
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

# The host's clock as the lab VM sees it: the harness writes its time into
# the results folder every second. Under emulation the lab VM's own clock can
# drift from the host's, and LAB_DEADLINE is a time on the host's.
HOST_CLOCK_FILE = "host-clock"


def keep_host_clock(results, stop):
    clock = results / HOST_CLOCK_FILE
    fresh = results / f"{HOST_CLOCK_FILE}.new"
    while True:
        try:
            fresh.write_text(f"{time.time():.3f}\n")
            fresh.replace(clock)
        except OSError:
            pass  # the results folder went away: the run is over
        if stop.wait(1):
            return


def host_time():
    """The host's time, read from the lab VM's results folder when there is
    one (inside the lab VM), else this machine's own clock."""
    results = os.environ.get("LAB_RESULTS")
    if results and os.environ.get("LAB_LEVEL") == "1":
        try:
            return float((Path(results) / HOST_CLOCK_FILE).read_text())
        except (OSError, ValueError):
            pass
    return time.time()


def wait_for_vm(proc, timeout, level):
    """proc.wait(timeout), which a level-2 VM also keeps by the host's clock:
    it must end DEADLINE_MARGIN s before the lab VM is stopped, however the
    lab VM's clock has drifted."""
    deadline = os.environ.get("LAB_DEADLINE")
    if level != 2 or not deadline:
        proc.wait(timeout=timeout)
        return
    end = time.monotonic() + timeout
    end_on_host = float(deadline) - DEADLINE_MARGIN
    while True:
        left = min(end - time.monotonic(), end_on_host - host_time())
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        try:
            proc.wait(timeout=min(left, 2))
            return
        except subprocess.TimeoutExpired:
            pass


def fit_deadline(args):
    """Shortens a level-2 guest's timeout to end before the lab VM's own
    (LAB_DEADLINE); a retry that no longer fits is an error."""
    deadline = os.environ.get("LAB_DEADLINE")
    if not deadline:
        return
    left = float(deadline) - host_time() - DEADLINE_MARGIN
    if left < 30:
        raise LabError(f"no time left for the level-2 guest: the lab VM stops in "
                       f"{left + DEADLINE_MARGIN:.0f} s")
    if left < args.timeout:
        print(f"lab: level-2 timeout {args.timeout:.0f} s cut to {left:.0f} s "
              "to end before the lab VM's", file=sys.stderr)
        args.timeout = left


# Where a level-2 guest's harness leaves its emulator faults for the lab VM's.
FAULTS_FILE = "emulator-faults"


def note_fault_for_lab_vm(err):
    results = os.environ.get("LAB_RESULTS")
    if results and Path(results).is_dir():
        with open(Path(results) / FAULTS_FILE, "a") as f:
            f.write(f"{err}\n")


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
        resets = faults = 0
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
            except EmulatorFault as err:
                faults += 1
                if level == 2:
                    # Only the whole job can run again (its host side has
                    # moved on): the lab VM's harness is told.
                    note_fault_for_lab_vm(err)
                    raise
                if faults > EMULATOR_FAULT_RETRIES:
                    raise
                print(f"lab: {err}\nlab: running the job again in a new VM", file=sys.stderr)
    except LabError as err:
        print(f"LAB FAILURE: {err}", file=sys.stderr)
        return LAB_ERROR
    except subprocess.CalledProcessError as err:
        print(f"LAB FAILURE: {shlex.join(err.cmd)} failed: {err.stderr or ''}",
              file=sys.stderr)
        return LAB_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
