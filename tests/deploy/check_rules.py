#!/usr/bin/env python3
"""deploy.rules: the alert rules load in promtool and behave as their runbooks say.

1. `promtool check rules` accepts the rules file as shipped.
2. Every alert has a severity label and non-empty summary, description and
   runbook annotations.
3. `promtool test rules rules_test.yml` against a copy of the rules that keeps
   only the summary annotation (promtool compares annotations whole).
"""
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "../../deploy/ansible/roles/ptnetmap_monitoring/files/rules/ptnetmap.rules.yml")


def main():
    failures = []
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    if r.returncode != 0:
        failures.append("promtool check rules")

    with open(RULES) as f:
        rules = yaml.safe_load(f)
    alerts = [rule for g in rules["groups"] for rule in g["rules"] if "alert" in rule]
    for rule in alerts:
        ann = rule.get("annotations", {})
        missing = [k for k in ("summary", "description", "runbook") if not str(ann.get(k, "")).strip()]
        if missing or rule.get("labels", {}).get("severity") not in ("warning", "critical"):
            failures.append(f"{rule['alert']}: missing {missing or 'severity'}")
        rule["annotations"] = {"summary": ann.get("summary", "")}
    print(f"{len(alerts)} alerts carry severity, summary, description and runbook")

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "ptnetmap.rules.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        with open(os.path.join(HERE, "rules_test.yml")) as f:
            test = f.read()
        with open(os.path.join(tmp, "rules_test.yml"), "w") as f:
            f.write(test)
        r = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=tmp,
                           capture_output=True, text=True)
        print(r.stdout + r.stderr, end="")
        if r.returncode != 0:
            failures.append("promtool test rules")
        tested = {line.split(":", 1)[1].strip() for line in test.splitlines()
                  if line.strip().startswith("alertname:")}
        untested = sorted({a["alert"] for a in alerts} - tested)
        if untested:
            failures.append(f"alerts without a test in rules_test.yml: {untested}")

    for f in failures:
        print("FAIL", f)
    if not failures:
        print("deploy.rules: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
