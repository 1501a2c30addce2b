#!/usr/bin/env python3
"""Generates docs/crds.md, the CRD reference, from crds/*.yaml.

usage: scripts/crd-docs.py [ROOT]            print the reference to stdout
       scripts/crd-docs.py --write [ROOT]    write ROOT/docs/crds.md
       scripts/crd-docs.py --check [ROOT]    exit 1 if ROOT/docs/crds.md differs
       scripts/crd-docs.py --undocumented [ROOT]
                                             list the schema fields without a
                                             description (informational)

ROOT is the repository root (default: the parent of this script's folder).
Only the standard library and PyYAML are used. The output depends on the
CRD files alone, so the check is exact: a schema change without a
regenerated docs/crds.md fails `ctest -R docs_crd_reference_test`.
"""

import difflib
import glob
import os
import sys

import yaml

OUTPUT = os.path.join("docs", "crds.md")
REGENERATE = "python3 scripts/crd-docs.py --write"

# Schema keywords shown in the "validation" column, in this order.
VALIDATION_KEYS = [
    ("format", "format: {}"),
    ("minimum", "minimum: {}"),
    ("maximum", "maximum: {}"),
    ("exclusiveMinimum", "exclusive minimum: {}"),
    ("exclusiveMaximum", "exclusive maximum: {}"),
    ("minLength", "min length: {}"),
    ("maxLength", "max length: {}"),
    ("pattern", "pattern: `{}`"),
    ("minItems", "min items: {}"),
    ("maxItems", "max items: {}"),
    ("minProperties", "min properties: {}"),
    ("maxProperties", "max properties: {}"),
    ("x-kubernetes-list-type", "list type: {}"),
    ("x-kubernetes-map-type", "map type: {}"),
]


# What kubefold does with a field, taken from the code (controllers/registry.cpp,
# controllers/failover.cpp, controllers/health.cpp), for the "notes" column.
# The schemas say what a field may hold; these say what kubefold makes of it.
# --check fails when a note names a field the schemas no longer have.
NOTES = {
    ("MemberCluster", "spec"):
        "A change of the kubeconfig (Secret content), context, `watch` or `health` restarts this cluster's "
        "watches and prober; the relist writes only what differs.",
    ("MemberCluster", "spec.kubeconfigSecretRef"):
        "The kubeconfig must carry its credentials inline: file references (`certificate-authority`, "
        "`client-certificate`, `client-key`, `tokenFile`) and `exec` plugins are refused with "
        "`Watching=False`, reason `KubeconfigInvalid`.",
    ("MemberCluster", "spec.kubeconfigSecretRef.namespace"):
        "kubefold lists and watches every Secret of each namespace named here (one informer per namespace).",
    ("MemberCluster", "spec.kubeconfigSecretRef.key"):
        "Missing key: `Watching=False`, reason `SecretKeyMissing`, naming the keys the Secret has.",
    ("MemberCluster", "spec.watch.kinds"):
        "One list+watch per kind (group `apps`, version `v1`), per listed namespace.",
    ("MemberCluster", "spec.watch.namespaces"):
        "A relist after a 410 replaces only that namespace's objects in the map.",
    ("MemberCluster", "spec.watch.labelSelector"):
        "Sent as `labelSelector` on every list and watch request.",
    ("MemberCluster", "spec.health.probePath"):
        "GET with the cluster's credentials; anything but HTTP 200, or no answer within `timeoutSeconds`, "
        "is a failed probe.",
    ("MemberCluster", "spec.health.periodSeconds"): "Time between two probes.",
    ("MemberCluster", "spec.health.gracePeriodSeconds"):
        "Watch events and bookmarks count as contact, like a successful probe.",
    ("MemberCluster", "status"): "Written by the leader only.",
    ("MemberCluster", "status.observedGeneration"): "`metadata.generation` of the spec last reconciled.",
    ("MemberCluster", "status.workloadCount"):
        "Workloads of this cluster in kubefold's newest snapshot (its health record not counted).",
    ("MemberCluster", "status.lastProbeTime"): "When the last health probe finished.",
    ("MemberCluster", "status.conditions"):
        "`Ready` (reasons `ProbeSucceeded`, `RecentlySeen`, `NotProbedYet`, `ProbeFailing`, `NoRecentContact`, "
        "`ProbeFailed`, `NotConnected`); `Watching` (`Watching`, or `SecretNotFound`, `SecretKeyMissing`, "
        "`KubeconfigInvalid`, `InvalidSpec`); `Synced` (`Synced`, `WaitingForInitialList`, `NotWatching`).",
    ("FailoverPolicy", "spec.selector.kinds"):
        "Only workloads of group `apps` with these kinds, in the policy's namespace, on the listed clusters.",
    ("FailoverPolicy", "spec.selector.labelSelector"): "Matched against each workload's own labels.",
    ("FailoverPolicy", "spec.clusters"):
        "A name without a MemberCluster gives `Ready=False`, reason `UnknownCluster`; that cluster is "
        "never chosen as a target and the others still act.",
    ("FailoverPolicy", "spec.trigger.clusterUnhealthySeconds"):
        "Counted from the `since` of the cluster's health record in the snapshot: when it stopped being "
        "Ready (Unknown to False does not restart the clock).",
    ("FailoverPolicy", "spec.trigger.workloadUnavailableSeconds"):
        "Unavailable means desired replicas not 0 and `availableReplicas` 0; the clock starts when a "
        "snapshot first shows it (kept in memory: a restart starts it again). The target must not hold an "
        "unavailable copy too.",
    ("FailoverPolicy", "spec.failback.mode"):
        "Failback goes to home, the first cluster in order holding a copy kubefold did not create; the "
        "request annotation is also cleared when nothing is away from home.",
    ("FailoverPolicy", "spec.maxInFlight"):
        "Counts workloads of audits in progress; the rest wait with `Degraded=False`, reason `Throttled`.",
    ("FailoverPolicy", "status"): "Written by the leader only.",
    ("FailoverPolicy", "status.observedGeneration"): "`metadata.generation` of the spec last evaluated.",
    ("FailoverPolicy", "status.conditions"):
        "`Ready` (`Reconciled`; `InvalidSpec`, `UnknownCluster`); `Conflict` (`NoConflict`; "
        "`OverlappingPolicies`: the older policy decides); `Degraded` (`Healthy`, `Throttled`; "
        "`NoHealthyCluster`).",
    ("FailoverPolicy", "status.workloads[].activeCluster"):
        "Where kubefold takes the workload to run: the target of its last move whose apply succeeded "
        "(a failed apply leaves it where it was, and the move is tried again with backoff), else home, "
        "else the first cluster in order holding a copy.",
    ("FailoverPolicy", "status.workloads[].since"): "When kubefold last moved the workload.",
    ("FailoverPolicy", "status.workloads[].lastAudit"): "The FailoverAudit of the last move.",
    ("FailoverAudit", "spec"): "kubefold creates the audit when it acts; the CEL rules below keep its record fixed.",
    ("FailoverAudit", "spec.policy"): "The FailoverPolicy's name (same namespace).",
    ("FailoverAudit", "spec.trigger.cluster"):
        "The cluster whose state triggered the move: the failing active cluster, or home for a failback.",
    ("FailoverAudit", "spec.trigger.observedTime"):
        "When the trigger's threshold was crossed (a requested failback: when it was decided).",
    ("FailoverAudit", "spec.from"): "The active cluster before the move.",
    ("FailoverAudit", "spec.to"): "The target.",
    ("FailoverAudit", "spec.workloads[].namespace"): "The policy's namespace.",
    ("FailoverAudit", "spec.workloads[].action"):
        "`Applied`: server-side apply succeeded; `Unchanged`: the target holds an object kubefold did not "
        "create, left as it is; `Failed`: see `message`.",
    ("FailoverAudit", "spec.before"):
        "The one snapshot the move was decided from, in the store of the replica that wrote the audit.",
    ("FailoverAudit", "spec.before.seq"): "Meaningful only to the kubefold replica that wrote it; with --history-file it survives that replica's restarts.",
    ("FailoverAudit", "spec.after"):
        "Added on completion: the first retained snapshot since `before` in which every applied workload "
        "is available on `to` (observed generation caught up, available replicas at the desired count).",
    ("FailoverAudit", "spec.changeSummary"):
        "Counts of the diff of `before` and `after` over every cluster (health-record changes included); "
        "left out when `before` is not in "
        "the completing replica's store.",
    ("FailoverAudit", "status.phase"):
        "`InProgress` until `after` is found (`Completed`), or the audit deadline passes, the target fails, "
        "or nothing could be applied (`Failed`).",
    ("FailoverAudit", "status.conditions"):
        "`Completed` (`WaitingForAvailability`; `WorkloadsAvailable`; `NothingApplied`, `Timeout`, "
        "`TargetUnhealthy`).",
}


def cell(text):
    """Text for a Markdown table cell: no newlines, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def literal(value):
    """A YAML/JSON value as it would be written in a manifest, in code."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value if value else '""'
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
        if text.endswith("..."):
            text = text[:-3].strip()
    return "`" + text.replace("`", "'") + "`"


def type_of(schema):
    t = schema.get("type", "")
    if t == "array":
        items = schema.get("items", {})
        inner = items.get("type", "")
        return "[]" + inner if inner else "array"
    if t == "object" and "additionalProperties" in schema and not schema.get("properties"):
        extra = schema["additionalProperties"]
        inner = extra.get("type", "") if isinstance(extra, dict) else ""
        return "map[string]" + inner if inner else "object"
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    if schema.get("x-kubernetes-preserve-unknown-fields") and not t:
        return "any"
    return t or "—"


def validation_of(schema):
    parts = []
    for key, fmt in VALIDATION_KEYS:
        if key in schema:
            parts.append(fmt.format(schema[key]))
    if "x-kubernetes-list-map-keys" in schema:
        parts.append("map keys: " + ", ".join(schema["x-kubernetes-list-map-keys"]))
    if "enum" in schema:
        parts.append("one of: " + ", ".join(literal(v) for v in schema["enum"]))
    if schema.get("nullable"):
        parts.append("nullable")
    if schema.get("x-kubernetes-validations"):
        parts.append("CEL rules below")
    # Constraints on the items of an array or the values of a map, shown on
    # the field itself (the items have no name of their own).
    for sub, label in (("items", "each item"), ("additionalProperties", "each value")):
        inner = schema.get(sub)
        if isinstance(inner, dict) and inner.get("type") not in ("object", "array"):
            inner_parts = [fmt.format(inner[k]) for k, fmt in VALIDATION_KEYS if k in inner]
            if "enum" in inner:
                inner_parts.append("one of: " + ", ".join(literal(v) for v in inner["enum"]))
            if inner_parts:
                parts.append(label + ": " + ", ".join(inner_parts))
    return "; ".join(parts)


def walk(schema, path, required, rows, rules):
    """Appends one row per field under `schema` (depth first, in file order)."""
    if path:
        rows.append({
            "path": path,
            "type": type_of(schema),
            "required": required,
            "default": literal(schema["default"]) if "default" in schema else "",
            "validation": validation_of(schema),
            "description": schema.get("description", ""),
        })
    for rule in schema.get("x-kubernetes-validations", []) or []:
        rules.append((path or "(the object)", rule))
    props = schema.get("properties") or {}
    needed = set(schema.get("required") or [])
    for name, sub in props.items():
        walk(sub, (path + "." if path else "") + name, name in needed, rows, rules)
    items = schema.get("items")
    if isinstance(items, dict) and (items.get("properties") or items.get("x-kubernetes-validations")):
        for rule in items.get("x-kubernetes-validations", []) or []:
            rules.append((path + "[]", rule))
        needed_items = set(items.get("required") or [])
        for name, sub in (items.get("properties") or {}).items():
            walk(sub, path + "[]." + name, name in needed_items, rows, rules)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties"):
        needed_extra = set(extra.get("required") or [])
        for name, sub in extra["properties"].items():
            walk(sub, path + ".*." + name, name in needed_extra, rows, rules)


def load_crds(root):
    crds = []
    for path in sorted(glob.glob(os.path.join(root, "crds", "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    crds.append((os.path.relpath(path, root), doc))
    return crds


def stale_notes(crds):
    """Notes naming a field that no schema has."""
    known = set()
    for _, crd in crds:
        for version in crd["spec"]["versions"]:
            rows = []
            walk(version.get("schema", {}).get("openAPIV3Schema", {}), "", False, rows, [])
            known.update((crd["spec"]["names"]["kind"], r["path"]) for r in rows)
    return sorted(k for k in NOTES if k not in known)


def render(root):
    crds = load_crds(root)
    out = []
    w = out.append
    w("# CRD reference")
    w("")
    w("<!-- Generated by scripts/crd-docs.py from crds/*.yaml. Do not edit by hand:")
    w("     change the CRDs, then run `" + REGENERATE + "`. -->")
    w("")
    w("kubefold's custom resources, as their schemas in `crds/` define them. The")
    w("API server enforces the schema's part (types, defaults, enums, bounds, CEL")
    w("rules) before kubefold sees an object; more on what kubefold does with the")
    w("fields is in [architecture.md](architecture.md) and")
    w("[failure-modes.md](failure-modes.md). Paths use `[]` for the items of an")
    w("array. \"Required\" means required within its parent object. The")
    w("description column is the schema's own; the notes column says what kubefold")
    w("does with the field, from the code (`NOTES` in the script, checked to name")
    w("fields that exist).")
    w("")
    w("| kind | file | scope |")
    w("|---|---|---|")
    for file, crd in crds:
        names = crd["spec"]["names"]
        anchor = names["kind"].lower()
        w("| [{}](#{}) | `{}` | {} |".format(names["kind"], anchor, file, crd["spec"]["scope"]))
    w("")
    w("Install them with `kubectl apply -f crds/` (the Helm chart carries the same")
    w("files in its `crds/` folder).")
    for file, crd in crds:
        spec = crd["spec"]
        names = spec["names"]
        w("")
        w("## " + names["kind"])
        w("")
        w("| | |")
        w("|---|---|")
        w("| CRD | `{}` (`{}`) |".format(crd["metadata"]["name"], file))
        w("| group | `{}` |".format(spec["group"]))
        served = [v["name"] + (" (storage)" if v.get("storage") else "") for v in spec["versions"] if v.get("served")]
        w("| versions | {} |".format(", ".join(served)))
        w("| kind / list kind | `{}` / `{}` |".format(names["kind"], names.get("listKind", names["kind"] + "List")))
        w("| plural / singular | `{}` / `{}` |".format(names["plural"], names.get("singular", "")))
        w("| scope | {} |".format(spec["scope"]))
        w("| short names | {} |".format(", ".join("`" + s + "`" for s in names.get("shortNames", [])) or "—"))
        w("| categories | {} |".format(", ".join("`" + s + "`" for s in names.get("categories", [])) or "—"))
        for version in spec["versions"]:
            subresources = sorted((version.get("subresources") or {}).keys())
            w("| subresources ({}) | {} |".format(version["name"], ", ".join("`" + s + "`" for s in subresources) or "—"))
        for version in spec["versions"]:
            schema = version.get("schema", {}).get("openAPIV3Schema", {})
            if schema.get("description"):
                w("")
                w(schema["description"])
            columns = version.get("additionalPrinterColumns") or []
            w("")
            w("### Printer columns ({})".format(version["name"]))
            w("")
            if columns:
                w("`kubectl get` prints NAME, then these columns; those of priority 1 only with `-o wide`.")
                w("")
                w("| column | type | JSONPath | priority | description |")
                w("|---|---|---|---|---|")
                for c in columns:
                    w("| {} | {} | `{}` | {} | {} |".format(
                        cell(c["name"]), c["type"], cell(c["jsonPath"]), c.get("priority", 0),
                        cell(c.get("description", ""))))
            else:
                w("None: `kubectl get` prints NAME and AGE.")
            rows, rules = [], []
            walk(schema, "", False, rows, rules)
            w("")
            w("### Fields ({})".format(version["name"]))
            w("")
            w("| field | type | required | default | validation | description (schema) | notes (from the code) |")
            w("|---|---|---|---|---|---|---|")
            for r in rows:
                w("| `{}` | {} | {} | {} | {} | {} | {} |".format(
                    r["path"], cell(r["type"]), "yes" if r["required"] else "", cell(r["default"]),
                    cell(r["validation"]), cell(r["description"]), cell(NOTES.get((names["kind"], r["path"]), ""))))
            if rules:
                w("")
                w("### Validation rules ({})".format(version["name"]))
                w("")
                w("CEL rules (`x-kubernetes-validations`) the API server checks on every")
                w("create and update; `oldSelf` is the stored object, so a rule that names")
                w("it applies to updates only.")
                for where, rule in rules:
                    w("")
                    w("- on `{}`: {}".format(where, rule.get("message", "(no message)")))
                    w("")
                    w("  ```")
                    w("  " + rule["rule"])
                    w("  ```")
                    if rule.get("reason") or rule.get("fieldPath"):
                        w("")
                        w("  reason `{}`, field path `{}`".format(rule.get("reason", ""), rule.get("fieldPath", "")))
    return "\n".join(out) + "\n"


def undocumented(root):
    missing = []
    for file, crd in load_crds(root):
        for version in crd["spec"]["versions"]:
            rows, _ = [], []
            walk(version.get("schema", {}).get("openAPIV3Schema", {}), "", False, rows, [])
            for r in rows:
                if r["path"] in ("apiVersion", "kind", "metadata"):
                    continue  # standard object fields
                if not r["description"]:
                    missing.append("{} {}: {}".format(crd["spec"]["names"]["kind"], version["name"], r["path"]))
    return missing


def main(argv):
    mode = "print"
    args = []
    for a in argv[1:]:
        if a in ("--check", "--write", "--undocumented"):
            mode = a[2:]
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        elif a.startswith("-"):
            print("crd-docs.py: unknown option " + a + " (see --help)", file=sys.stderr)
            return 2
        else:
            args.append(a)
    if len(args) > 1:
        print("crd-docs.py: at most one ROOT (see --help)", file=sys.stderr)
        return 2
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if not load_crds(root):
        print("crd-docs.py: no CustomResourceDefinition in " + os.path.join(root, "crds", "*.yaml"), file=sys.stderr)
        return 1
    stale = stale_notes(load_crds(root))
    if stale:
        for kind, path in stale:
            print("crd-docs.py: NOTES names {} {}, which no schema in crds/ has; fix NOTES".format(kind, path),
                  file=sys.stderr)
        return 1
    if mode == "undocumented":
        for line in undocumented(root):
            print(line)
        return 0
    text = render(root)
    target = os.path.join(root, OUTPUT)
    if mode == "print":
        sys.stdout.write(text)
        return 0
    if mode == "write":
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    try:
        with open(target, encoding="utf-8") as f:
            current = f.read()
    except OSError as e:
        print("{} cannot be read ({}); generate it with `{}`".format(OUTPUT, e.strerror, REGENERATE), file=sys.stderr)
        return 1
    if current == text:
        return 0
    print("{} is stale: it differs from what scripts/crd-docs.py generates from crds/*.yaml.".format(OUTPUT),
          file=sys.stderr)
    print("Regenerate it from the repository root with `{}` and commit the result.".format(REGENERATE),
          file=sys.stderr)
    diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), OUTPUT + " (committed)",
                                     OUTPUT + " (generated)", lineterm="", n=1))
    for line in diff[:60]:
        print(line, file=sys.stderr)
    if len(diff) > 60:
        print("... ({} more diff lines)".format(len(diff) - 60), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
