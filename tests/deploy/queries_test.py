#!/usr/bin/env python3
"""Every query of the dashboards and alert rules returns data from a live agent.

deploy.queries (unit, natively): ptnetd --datapath=fake.
lab.deploy.queries (lab VM, ptnetmap.ko loaded): ptnetd --datapath=kernel with
traffic from ptgen between two persistent ports.

1. ptnetd runs with switches, persistent ports and VM attachments of both
   trust policies, made with ptctl (plus one refused call, so that the API
   error panels have a code other than OK). VM attachments the loaded module
   cannot make (ptctl exit 7) are made on a second ptnetd with the fake
   datapath, scraped by the same Prometheus, so every attachment series
   exists.
2. Debian's Prometheus scrapes the agents every second (job "ptnetd", as the
   role ptnetmap_monitoring configures it) and loads the shipped alert rules.
3. From the dashboards' JSON and the rules' YAML, every PromQL expression
   (panel targets, template variables, alert expressions) is extracted. Each
   metric it names must be in the agents' /metrics; each selector it contains
   must return series; each dashboard expression as a whole must return data
   (Grafana variables replaced by match-all values); each alert expression
   must evaluate without error, and Prometheus must report every rule healthy.
4. With traffic (kernel datapath), the per-port packet rate panel shows the
   receiving port's packets moving.

Helpers (Ptgen, metric, check, kernel_stats) are those of
tests/agent/agent_lab_test.py. Every check prints one line; exit status 1 if
any failed.
"""
import argparse
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../agent"))
import agent_lab_test as lab  # noqa: E402  (Ptgen, metric, kernel_stats)
import steps  # noqa: E402  (on the path through agent_lab_test)
from steps import check, log  # noqa: E402

MONITORING = os.path.join(HERE, "../../deploy/ansible/roles/ptnetmap_monitoring/files")
RULES = os.path.join(MONITORING, "rules/ptnetmap.rules.yml")
DASHBOARDS = sorted(glob.glob(os.path.join(MONITORING, "dashboards/*.json")))
WORK = "/tmp/deployq"
RATE_WINDOW = "15s"  # what $__rate_interval becomes: 15 scrapes at 1 s
# Grafana's variables, as the match-all value or the window above.
VARIABLES = {"$__rate_interval": RATE_WINDOW, "$__interval": "5s", "$__range": "1m",
             "$instance": ".*", "$switch": ".*", "$attachment": ".*"}
SELECTOR = re.compile(r"\b((?:ptnetmap_[a-z0-9_]+)|up)\b\s*(\{[^}]*\})?")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """One ptnetd with its own socket, database and metrics port under WORK."""

    def __init__(self, ptnetd, ptctl, name, datapath):
        self.ptnetd, self.ptctl_bin, self.name, self.datapath = ptnetd, ptctl, name, datapath
        self.dir = f"{WORK}/{name}"
        self.sock = f"{self.dir}/ptnetd.sock"
        self.metrics = f"127.0.0.1:{free_port()}"
        os.makedirs(self.dir)

    def start(self):
        self.log_path = f"{self.dir}/ptnetd.log"
        self.proc = subprocess.Popen(
            [self.ptnetd, f"--datapath={self.datapath}", f"--socket={self.sock}",
             f"--db_path={self.dir}/ptnetd.db", f"--ivshmem_dir={self.dir}/ivshmem",
             f"--metrics_address={self.metrics}"],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        steps.CHILDREN.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.ptctl("health").returncode == 0:
                log(f"ptnetd {self.name} (--datapath={self.datapath}) serving, metrics {self.metrics}")
                return True
            time.sleep(0.3)
        return check(False, f"ptnetd {self.name} serves within 60 s", open(self.log_path).read())

    def ptctl(self, *args):
        return subprocess.run([self.ptctl_bin, f"--socket={self.sock}", "--timeout=10", *args],
                              capture_output=True, text=True, timeout=30)

    def ok(self, *args):
        r = self.ptctl(*args)
        check(r.returncode == 0, f"{self.name}: ptctl {' '.join(args)}",
              f"exit {r.returncode}: {r.stderr.strip()}")
        return r

    def scrape(self):
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10) as resp:
            return resp.read().decode()


# ---------------------------------------------------------------------------
# Expressions from the dashboards and the rules
# ---------------------------------------------------------------------------

def dashboard_queries():
    """(where, expr, kind) of every panel target and template variable."""
    out = []
    for path in DASHBOARDS:
        with open(path) as f:
            board = json.load(f)
        name = os.path.basename(path)

        def panels(items):
            for p in items:
                yield p
                yield from panels(p.get("panels", []))

        for p in panels(board.get("panels", [])):
            for t in p.get("targets", []):
                out.append((f"{name} panel '{p['title']}' {t['refId']}", t["expr"], "panel"))
        for v in board.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                out.append((f"{name} variable ${v['name']}", q, "variable"))
    return out


def rule_queries():
    import yaml
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    return [(f"rule {r.get('alert') or r.get('record')}", r["expr"], "rule")
            for g in rules["groups"] for r in g["rules"]]


def substitute(expr):
    for var in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace("${" + var[1:] + "}", VARIABLES[var]).replace(var, VARIABLES[var])
    return expr


def selectors(expr):
    return sorted({m.group(1) + (m.group(2) or "") for m in SELECTOR.finditer(expr)})


# ---------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------

class Prometheus:
    def __init__(self, targets):
        self.address = f"127.0.0.1:{free_port()}"
        os.makedirs(f"{WORK}/prom")
        shutil.copy(RULES, f"{WORK}/ptnetmap.rules.yml")
        with open(f"{WORK}/prometheus.yml", "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {WORK}/ptnetmap.rules.yml\n"
                    "scrape_configs:\n  - job_name: ptnetd\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        self.proc = subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={WORK}/prometheus.yml",
             f"--storage.tsdb.path={WORK}/prom", f"--web.listen-address={self.address}"],
            stdout=open(f"{WORK}/prometheus.log", "w"), stderr=subprocess.STDOUT)
        steps.CHILDREN.append(self.proc)

    def api(self, path, **params):
        url = f"http://{self.address}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:  # 400 for a bad query: the body says why
            body = e.read().decode(errors="replace")
            try:
                return json.loads(body)
            except ValueError:  # 503 while starting: plain text
                return {"status": "error", "error": f"HTTP {e.code}: {body.strip()}"}

    def query(self, expr):
        return self.api("query", query=expr)

    def log(self):
        return open(f"{WORK}/prometheus.log").read()[-3000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except (OSError, ValueError, KeyError):  # not serving yet
            pass
        time.sleep(1)
    return check(False, what)


# ---------------------------------------------------------------------------

def make_objects(kernel, args):
    """Ports and attachments; returns the agents Prometheus must scrape."""
    agents = [kernel]
    kernel.ok("switch", "create", "valeQ")
    for port in ("p1", "p2"):
        kernel.ok("port", "create", "valeQ", port)
    dup = kernel.ptctl("port", "create", "valeQ", "p1")
    check(dup.returncode == 3, "a refused call (ALREADY_EXISTS) for the API error panels",
          f"exit {dup.returncode}")

    # VM attachments of both trust policies, where the datapath can make them.
    missing, why = [], ""
    r = kernel.ptctl("vm", "attach", "valeQ", "vmu1", "--trust", "untrusted")
    if r.returncode != 0:
        missing.append("untrusted")
        why = r.stderr.strip()
    r = kernel.ptctl("pipe", "create", "ppq")
    if r.returncode == 0:
        a = kernel.ptctl("vm", "attach", "ppq", "vmt1", "--trust", "trusted", "--peer", "vmt2")
        b = kernel.ptctl("vm", "attach", "ppq", "vmt2", "--trust", "trusted", "--peer", "vmt1")
        if a.returncode != 0 or b.returncode != 0:
            missing.append("trusted")
    else:
        missing.append("trusted")
    if missing:
        log(f"the {kernel.datapath} datapath made no {' and '.join(missing)} VM attachment "
            f"({why or 'see ptctl'}); a fake-datapath agent provides those series")
        fake = Agent(args.ptnetd, args.ptctl, "fake", "fake")
        if not fake.start():
            return agents
        fake.ok("switch", "create", "valeF")
        fake.ok("vm", "attach", "valeF", "vmu1", "--trust", "untrusted")
        fake.ok("pipe", "create", "ppf")
        fake.ok("vm", "attach", "ppf", "vmt1", "--trust", "trusted", "--peer", "vmt2")
        fake.ok("vm", "attach", "ppf", "vmt2", "--trust", "trusted", "--peer", "vmt1")
        agents.append(fake)
    return agents


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptnetd", required=True)
    ap.add_argument("--ptctl", required=True)
    ap.add_argument("--ptgen", help="with --datapath=kernel: traffic between the ports")
    ap.add_argument("--datapath", choices=["kernel", "fake"], default="fake")
    args = ap.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)

    queries = dashboard_queries() + rule_queries()
    check(len(DASHBOARDS) >= 2 and len(queries) > 20,
          f"{len(queries)} expressions in {len(DASHBOARDS)} dashboards and the rules")

    # 1. Agents and objects.
    agent = Agent(args.ptnetd, args.ptctl, "main", args.datapath)
    if not agent.start():
        return 1
    agents = make_objects(agent, args)
    traffic = args.datapath == "kernel" and args.ptgen
    if traffic:
        rx = lab.Ptgen(args.ptgen, "rx", "-i", "valeQ:p2", "--idle", "300")
        check(rx.ready(), "ptgen rx opened valeQ:p2", "".join(rx.err))
        tx = lab.Ptgen(args.ptgen, "tx", "-i", "valeQ:p1", "-n", "100000000", "-r", "2000")
        check(tx.ready(), "ptgen tx opened valeQ:p1", "".join(tx.err))

    # Every metric named by a query is exported by some agent.
    exported = set()
    for a in agents:
        for line in a.scrape().splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
            if m:
                exported.add(m.group(1))
    named = sorted({m.group(1) for _, expr, _ in queries for m in SELECTOR.finditer(expr)
                    if m.group(1) != "up"})
    unknown = [n for n in named if n not in exported]
    check(not unknown, f"all {len(named)} metric names used are exported by ptnetd", unknown)

    # 2. Prometheus scrapes the agents and loads the rules.
    prom = Prometheus([a.metrics for a in agents])
    try:
        wait_for("prometheus scrapes every agent (up == 1)",
                 lambda: len(prom.query('up{job="ptnetd"} == 1').get("data", {}).get("result", []))
                 == len(agents), 120)
        # Enough samples for rate() over the window, with traffic in it.
        time.sleep(int(RATE_WINDOW[:-1]) + 3)

        # 3. Every expression and every selector in it.
        for where, expr, kind in queries:
            q = substitute(expr)
            if kind == "variable":
                m = re.match(r"label_values\((.*),\s*(\w+)\)$", q)
                if not check(m is not None, f"{where}: label_values(selector, label)", q):
                    continue
                res = prom.query(m.group(1))
                values = {s["metric"].get(m.group(2)) for s in res.get("data", {}).get("result", [])}
                check(res.get("status") == "success" and values - {None},
                      f"{where}: has values", f"{res.get('error', '')} {values}")
                continue
            res = prom.query(q)
            ok = res.get("status") == "success"
            if kind == "panel":
                n = len(res.get("data", {}).get("result", [])) if ok else 0
                check(ok and n > 0, f"{where}: {n} series",
                      f"{res.get('error', 'no data')}\n    {q}")
            else:
                check(ok, f"{where}: evaluates", f"{res.get('error')}\n    {q}")
            for sel in selectors(q):
                sres = prom.query(sel)
                n = len(sres.get("data", {}).get("result", []))
                if not (sres.get("status") == "success" and n > 0):
                    check(False, f"{where}: selector {sel} has series", sres.get("error", "no data"))

        wait_for("prometheus evaluated every rule",
                 lambda: all(r.get("lastEvaluation", "").startswith("20") for r in
                             [x for g in prom.api("rules")["data"]["groups"] for x in g["rules"]]),
                 30)
        rules = prom.api("rules")
        loaded = [r for g in rules.get("data", {}).get("groups", []) for r in g["rules"]]
        bad = [(r["name"], r.get("lastError")) for r in loaded if r.get("health") != "ok"]
        check(len(loaded) == len(rule_queries()) and not bad,
              f"prometheus loaded all {len(loaded)} rules, every one healthy", bad or prom.log())
        # Pending is allowed: with the kernel datapath a VM attachment without
        # a guest gets the switch's flooded packets and drops them (ring_full),
        # which PtnetmapAttachmentDropsRising rightly starts counting down.
        alerts = prom.api("alerts")["data"]["alerts"]
        firing = [a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"]
        pending = sorted({a["labels"]["alertname"] for a in alerts if a.get("state") == "pending"})
        check(not firing, "no alert fires on this healthy host", firing)
        if pending:
            log(f"pending alerts: {', '.join(pending)}")

        # 4. Traffic is visible on the dashboard.
        if traffic:
            expr = next(e for w, e, _ in queries if "Packets per second, by port" in w
                        and "rx_packets" in e)
            res = prom.query(substitute(expr).replace('switch=~".*"', 'switch="valeQ"'))
            rates = {s["metric"].get("port"): float(s["value"][1])
                     for s in res["data"]["result"]}
            sent = lab.kernel_stats("valeQ:p1")["tx_packets"]
            check(rates.get("p2", 0) > 0 and sent > 0,
                  "the per-port packet rate panel shows valeQ:p2 receiving",
                  f"rates {rates}, p1 sent {sent}")
            log(f"valeQ:p2 receives {rates.get('p2', 0):.0f} packets/s by the dashboard")
    finally:
        prom.stop()

    for a in agents:
        a.proc.terminate()
        a.proc.wait(30)
    return steps.verdict()


if __name__ == "__main__":
    steps.run_main("deploy.queries", main)
