#!/usr/bin/env python3
"""lab.agent: ptnetd --datapath=kernel and ptctl against the real module.

Runs inside the lab VM (tests/lab/lab.py), ptnetmap.ko loaded, as root:

  1. ptnetd starts with its socket, database and ivshmem folder in /tmp and
     metrics on 127.0.0.1; ptctl creates switch valeA and persistent ports
     p1 and p2; VALE_LIST (read here with our own ioctl) shows them.
  2. ptgen sends valeA:p1 -> valeA:p2 at a modest rate (a VALE switch drops
     at a full receiver, so the rate is what TCG keeps up with).
  3. While traffic flows, ptnetd is killed with SIGKILL (ptctl then exits 5)
     and restarted on the same database: ptctl lists the same objects, and
     reconcile adopted them (ptnetmap_reconcile_objects).
  4. The traffic run completes without loss: kernel objects outlive the agent.
  5. /metrics has the per-port counters, equal to PTNETMAP_REQ_PORT_STATS_GET
     read directly; if /usr/bin/prometheus exists it scrapes the agent and
     its HTTP API is asked for the counter.
  6. The ports are deleted through ptctl and are gone from the kernel; after
     SIGTERM, ptctl says the agent is unreachable with exit code 5.

Every check prints one line; the exit status is 1 if any failed.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

SWITCH = "valeA"
PORTS = ["p1", "p2"]
PACKETS = 360000
RATE = 4000  # packets per second: 90 s of traffic, past the agent restart under TCG
METRICS = "127.0.0.1:9610"
WORK = "/tmp/agentlab"


# The kernel, directly: NIOCCTRL with VALE_LIST and PTNETMAP_REQ_PORT_STATS_GET
# (tests/lib/ptkern.py, which other lab tests use as well); how a lab test
# reports its steps (tests/lib/steps.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ptkern import kernel_ports, kernel_stats  # noqa: E402
import steps  # noqa: E402
from steps import CHILDREN, check, log  # noqa: E402


# ---------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------

class Agent:
    def __init__(self, ptnetd, ptctl):
        self.ptnetd, self.ptctl_bin = ptnetd, ptctl
        self.sock = f"{WORK}/ptnetd.sock"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = f"{WORK}/ptnetd.{self.starts}.log"
        self.proc = subprocess.Popen(
            [self.ptnetd, "--datapath=kernel", f"--socket={self.sock}",
             f"--db_path={WORK}/ptnetd.db", f"--ivshmem_dir={WORK}/ivshmem",
             f"--metrics_address={METRICS}"],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        CHILDREN.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                healthy = self.ptctl("health").returncode == 0
            except subprocess.TimeoutExpired:  # a loaded lab VM: try again
                healthy = False
            if healthy:
                log(f"ptnetd #{self.starts} (pid {self.proc.pid}) serving")
                return True
            time.sleep(0.3)
        check(False, f"ptnetd #{self.starts} serves within 60 s", self.log())
        return False

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def ptctl(self, *args, output=None):
        cmd = [self.ptctl_bin, f"--socket={self.sock}", "--timeout=10"]
        if output:
            cmd += ["--output", output]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)

    def ok(self, *args):
        r = self.ptctl(*args)
        check(r.returncode == 0, "ptctl " + " ".join(args), f"exit {r.returncode}: {r.stderr.strip()}")
        return r

    def json(self, *args):
        r = self.ptctl(*args, output="json")
        if not check(r.returncode == 0, f"ptctl --output json {' '.join(args)}", r.stderr.strip()):
            return {}
        return json.loads(r.stdout)


def scrape():
    with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=10) as resp:
        return resp.read().decode()


def metric(text, name, **labels):
    """The value of the sample `name` whose labels include `labels`, or None."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def objects(agent):
    switches = agent.json("switch", "list").get("switches", [])
    ports = agent.json("port", "list").get("ports", [])
    return ([(s["name"], sorted(s.get("ports", []))) for s in switches],
            sorted((p["switch_name"], p["name"], p["netmap_name"]) for p in ports))


class Ptgen:
    """ptgen in the background, its stderr collected; ready() waits for the port."""

    def __init__(self, ptgen, *args):
        self.proc = subprocess.Popen([ptgen, *args, "--json", "-q"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        CHILDREN.append(self.proc)
        self.err, self.is_ready = [], threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.err.append(line)
            if ": ready" in line:
                self.is_ready.set()

    def ready(self):
        return self.is_ready.wait(30)

    def finish(self, timeout):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        lines = [l for l in out.splitlines() if l.startswith("{")]
        return self.proc.returncode, (json.loads(lines[-1]) if lines else {})


def prometheus_query(promql):
    url = "http://127.0.0.1:9611/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        data = json.load(resp)
    result = data.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None


def check_with_prometheus(expected_rx):
    if not os.path.exists("/usr/bin/prometheus"):
        log("skip  /usr/bin/prometheus is not installed")
        return
    os.makedirs(f"{WORK}/prom", exist_ok=True)
    with open(f"{WORK}/prometheus.yml", "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: ptnetd\n    static_configs:\n"
                f"      - targets: ['{METRICS}']\n")
    prom = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={WORK}/prometheus.yml",
         f"--storage.tsdb.path={WORK}/prom", "--web.listen-address=127.0.0.1:9611"],
        stdout=open(f"{WORK}/prometheus.log", "w"), stderr=subprocess.STDOUT)
    value, deadline = None, time.monotonic() + 120
    try:
        while time.monotonic() < deadline and prom.poll() is None:
            try:
                value = prometheus_query(
                    f'ptnetmap_port_rx_packets_total{{switch="{SWITCH}",port="p2"}}')
                if value is not None:
                    break
            except OSError:
                pass
            time.sleep(1)
        up = prometheus_query('up{job="ptnetd"}') if value is not None else None
        check(value == expected_rx and up == 1,
              "prometheus scraped ptnetd: ptnetmap_port_rx_packets_total of p2 and up",
              f"got {value}, up {up}, want {expected_rx}; log:\n" +
              open(f"{WORK}/prometheus.log").read()[-3000:])
    finally:
        steps.stop(prom, grace=30)


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptnetd", required=True)
    ap.add_argument("--ptctl", required=True)
    ap.add_argument("--ptgen", required=True)
    args = ap.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    agent = Agent(args.ptnetd, args.ptctl)

    # 1. Configuration through the agent, checked in the kernel.
    if not agent.start():
        return 1
    agent.ok("switch", "create", SWITCH)
    for port in PORTS:
        agent.ok("port", "create", SWITCH, port)
    before = objects(agent)
    check(before == ([(SWITCH, PORTS)], [(SWITCH, p, f"{SWITCH}:{p}") for p in PORTS]),
          "ptctl lists the switch and both ports", before)
    in_kernel = kernel_ports()
    check(sorted(in_kernel) == [f"{SWITCH}:{p}" for p in PORTS],
          "VALE_LIST has both persistent ports", in_kernel)
    zero = {p: kernel_stats(f"{SWITCH}:{p}") for p in PORTS}
    check(all(v == 0 for s in zero.values() for v in s.values()),
          "counters of new ports are zero", zero)
    dup = agent.ptctl("port", "create", SWITCH, "p1")
    check(dup.returncode == 3, "a second 'port create p1' says already exists (3)",
          f"exit {dup.returncode}: {dup.stderr.strip()}")

    # 2. Traffic p1 -> p2 through the persistent ports.
    rx = Ptgen(args.ptgen, "rx", "-i", f"{SWITCH}:p2", "-n", str(PACKETS), "--verify",
               "--idle", "20")
    if not check(rx.ready(), "ptgen rx opened valeA:p2", "".join(rx.err)):
        return 1
    tx = Ptgen(args.ptgen, "tx", "-i", f"{SWITCH}:p1", "-n", str(PACKETS), "-r", str(RATE))
    if not check(tx.ready(), "ptgen tx opened valeA:p1", "".join(tx.err)):
        return 1
    time.sleep(2)
    moving = kernel_stats(f"{SWITCH}:p2")["rx_packets"]
    check(moving > 0 and tx.proc.poll() is None, "traffic is flowing before the kill",
          f"p2 rx_packets {moving}")

    # 3. SIGKILL while traffic flows, then a restart on the same database.
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    down = agent.ptctl("switch", "list")
    check(down.returncode == 5, "ptctl against the killed agent exits 5",
          f"exit {down.returncode}: {down.stderr.strip()}")
    check(sorted(kernel_ports()) == [f"{SWITCH}:{p}" for p in PORTS],
          "the ports stay in the kernel while the agent is down")
    if not agent.start():
        return 1
    check(tx.proc.poll() is None, "traffic still flowing after the restart (the run is long enough)")
    after = objects(agent)
    check(after == before, "ptctl lists the same objects after the restart", after)
    text = scrape()
    adopted = metric(text, "ptnetmap_reconcile_objects", result="adopted")
    drift = [metric(text, "ptnetmap_reconcile_objects", result=r)
             for r in ("recreated", "failed", "unmanaged")]
    check(adopted is not None and adopted >= len(PORTS) and drift == [0, 0, 0],
          "reconcile adopted the ports (no recreated, failed or unmanaged)",
          f"adopted {adopted}, recreated/failed/unmanaged {drift}")
    check("reconcile: " in agent.log() and " 0 recreated" in agent.log(),
          "ptnetd logged the reconcile summary", agent.log())

    # 4. The traffic run completes without loss.
    tx_rc, tx_sum = tx.finish(PACKETS / RATE * 2 + 60)
    rx_rc, rx_sum = rx.finish(60)
    check(tx_rc == 0 and tx_sum.get("packets") == PACKETS and tx_sum.get("unsent", 0) == 0,
          f"ptgen tx sent {PACKETS} packets", f"exit {tx_rc}, {tx_sum} {''.join(tx.err)}")
    check(rx_rc == 0 and rx_sum.get("packets") == PACKETS and rx_sum.get("lost") == 0
          and rx_sum.get("out_of_order") == 0 and rx_sum.get("corrupted") == 0,
          f"ptgen rx got all {PACKETS} packets, verified, none lost",
          f"exit {rx_rc}, {rx_sum} {''.join(rx.err)}")

    # 5. Counters: the kernel's own, /metrics, ptctl stats, prometheus.
    k = {p: kernel_stats(f"{SWITCH}:{p}") for p in PORTS}
    log(f"kernel counters: {k}")
    check(k["p1"]["tx_packets"] == PACKETS and k["p2"]["rx_packets"] == PACKETS
          and k["p2"]["rx_bytes"] == rx_sum.get("bytes"),
          "kernel: p1 sent and p2 received every packet", k)
    check(all(v == 0 for p in PORTS for f, v in k[p].items() if "drop" in f),
          "kernel: no drops on either port", k)
    text = scrape()
    check(metric(text, "ptnetmap_datapath_up") == 1, "ptnetmap_datapath_up is 1")
    for port in PORTS:
        for field in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
            got = metric(text, f"ptnetmap_port_{field}_total", switch=SWITCH, port=port,
                         kind="port")
            check(got == k[port][field], f"/metrics {field} of {port} = kernel's {k[port][field]}",
                  f"got {got}")
        drops = metric(text, "ptnetmap_port_drops_total", switch=SWITCH, port=port,
                       cause="ring_full")
        check(drops == 0, f"/metrics ring_full drops of {port} present and 0", f"got {drops}")
    stats = agent.json("stats")
    by_name = {p["name"]: p.get("counters", {}) for p in stats.get("ports", [])}
    check(int(by_name.get("p2", {}).get("rx_packets", -1)) == PACKETS,
          "ptctl stats shows p2's rx_packets", stats)
    check_with_prometheus(float(PACKETS))

    # 6. Clean up through the agent; then a stopped agent.
    for port in PORTS:
        agent.ok("port", "delete", SWITCH, port)
    agent.ok("switch", "delete", SWITCH)
    left = kernel_ports()
    check(left == [], "the ports are gone from the kernel", left)
    agent.proc.send_signal(signal.SIGTERM)
    check(agent.proc.wait(30) == 0, "ptnetd exits 0 on SIGTERM", agent.log())
    down = agent.ptctl("switch", "list")
    check(down.returncode == 5 and "ptnetd" in down.stderr,
          "ptctl against the stopped agent exits 5 with a clear message",
          f"exit {down.returncode}: {down.stderr.strip()}")
    log(f"ptctl against the stopped agent said: {down.stderr.strip()}")

    return steps.verdict()


if __name__ == "__main__":
    steps.run_main("lab.agent", main)
