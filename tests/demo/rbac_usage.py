#!/usr/bin/env python3
"""Compares what kubefold did on the host during the demo with the chart's RBAC.

usage: rbac_usage.py CHART_RENDERING AUTHORIZATION_LOG SERVICE_ACCOUNT

CHART_RENDERING is the chart as the demo rendered it; AUTHORIZATION_LOG is
kube-emulator's log of authorization decisions on the host (one JSON line per
request of a user outside system:masters); SERVICE_ACCOUNT is the user
kubefold ran as. Two checks:

  needed  every request kubefold made is granted by the chart's own rules
          (ClusterRole/Roles bound to that ServiceAccount), and the host
          allowed it;
  used    every verb on every resource the chart grants was used, except
          those listed in NOT_EXERCISED with the reason the demo cannot show
          them (each of those is exercised by a named test instead).

Prints one line per finding and exits 1 when a check fails.
"""
import json
import sys

import yaml

# Grants the demo's run does not exercise, and where they are exercised.
NOT_EXERCISED = {
    ("authentication.k8s.io", "tokenreviews", "create"):
        "the demo binds the API to loopback; api_test's off-localhost case reviews tokens",
    ("authorization.k8s.io", "subjectaccessreviews", "create"):
        "the demo binds the API to loopback; api_test's off-localhost case checks access",
    ("kubefold.io", "failoverpolicies", "patch"):
        "clears the kubefold.io/failback annotation after a manual failback (operator_test)",
    ("", "events", "patch"):
        "counts a repeated Event; the demo's Events are all distinct",
}


def sa_rules(docs, sa_ns, sa_name):
    """(namespace or None, rule) for every rule bound to the ServiceAccount."""
    roles = {}
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            roles[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = d
    out = []
    for d in docs:
        if d["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and s.get("namespace") == sa_ns
                   for s in d.get("subjects", [])):
            continue
        ref = d["roleRef"]
        ns = d["metadata"].get("namespace") if d["kind"] == "RoleBinding" else None
        role = roles.get((ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"]))
        if role is None:
            continue
        for rule in role.get("rules", []):
            out.append((ns, rule))
    return out


def grants(ns, rule, req):
    if ns is not None and req.get("namespace") != ns:
        return False
    if req.get("group", "") not in rule.get("apiGroups", []) and "*" not in rule.get("apiGroups", []):
        return False
    res = req["resource"] + ("/" + req["subresource"] if req.get("subresource") else "")
    if res not in rule.get("resources", []) and "*" not in rule.get("resources", []):
        return False
    if req["verb"] not in rule.get("verbs", []) and "*" not in rule.get("verbs", []):
        return False
    names = rule.get("resourceNames")
    return not names or req.get("name") in names


def main():
    rendering, log, user = sys.argv[1:4]
    _, _, sa_ns, sa_name = user.split(":")
    with open(rendering) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    rules = sa_rules(docs, sa_ns, sa_name)
    failures = 0
    if not rules:
        print(f"FAIL no rules of the rendering are bound to {user}")
        return 1
    requests = []
    with open(log) as f:
        for line in f:
            r = json.loads(line)
            if r["user"] == user:
                requests.append(r)
    resource_requests = [r for r in requests if "resource" in r]
    if not resource_requests:
        print(f"FAIL the host's authorization log has no request of {user}")
        return 1

    used = set()
    ungranted = {}
    for r in resource_requests:
        key = (r.get("group", ""), r["resource"] + ("/" + r["subresource"] if r.get("subresource") else ""), r["verb"])
        matched = [i for i, (ns, rule) in enumerate(rules) if grants(ns, rule, r)]
        if not r["allowed"] or not matched:
            ungranted.setdefault(key, 0)
            ungranted[key] += 1
        for i in matched:
            used.add((i, key))
    for (group, res, verb), n in sorted(ungranted.items()):
        print(f"FAIL needed: {verb} {res} (group '{group}') x{n} is not granted by the chart")
        failures += 1
    if not ungranted:
        print(f"ok   needed: all {len(resource_requests)} requests kubefold made on the host are granted by "
              f"the chart's {len(rules)} rules")

    unused = []
    for i, (ns, rule) in enumerate(rules):
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    if (i, (group, res, verb)) in used:
                        continue
                    why = NOT_EXERCISED.get((group, res, verb))
                    if why:
                        print(f"ok   used: {verb} {res} not in the demo: {why}")
                    else:
                        unused.append(f"{verb} {res} (group '{group}'{', namespace ' + ns if ns else ''})")
    for u in unused:
        print(f"FAIL used: the chart grants {u} but kubefold never used it")
        failures += 1
    if not unused:
        print("ok   used: every other grant of the chart was used")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
