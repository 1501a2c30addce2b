#!/usr/bin/env python3
"""Checks one rendering of charts/kubefold (chart-render's output).

usage: check_rendered.py VARIANT RENDERED.yaml KUBEFOLD_BINARY

VARIANT is default, ha, tls, minimal or persistence (tests/chart/values/
<variant>.yaml), or persistence-defaults, persistence-existing or
persistence-noclass (chart_test.sh renders those with --set, see there).
Checks what every variant must hold (standard labels, the restricted Pod
Security profile, probes on the health port, flags kubefold really has,
a Service selecting exactly the operator's pods, no duplicate YAML keys,
the history's flags, volume and rollout strategy agreeing with each other)
and what each variant's values must have changed. Prints one line per
failed check and exits 1 if any failed.
"""
import re
import subprocess
import sys

import yaml

FAILURES = []

# Volume types the restricted Pod Security Standard allows.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
HISTORY_DIR = "/var/lib/kubefold"
HISTORY_FILE = HISTORY_DIR + "/history.db"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
    return cond


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (as the API server's decoder does)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def kubefold_flags(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out))


def main():
    variant, rendered, binary = sys.argv[1:4]
    with open(rendered) as f:
        docs = [d for d in yaml.load_all(f, Loader=StrictLoader) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def one(kind):
        items = [d for d in by_kind.get(kind, [])
                 if "helm.sh/hook" not in d["metadata"].get("annotations", {})]
        check(len(items) == 1, f"{kind}: want exactly one, got {len(items)}")
        return items[0] if items else {}

    # Labels on everything.
    for d in docs:
        name = f'{d["kind"]}/{d["metadata"].get("name")}'
        labels = d["metadata"].get("labels", {})
        for key in ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                    "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
            check(key in labels, f"{name}: label {key} missing")
        check(labels.get("app.kubernetes.io/managed-by") == "Helm", f"{name}: managed-by is not Helm")

    dep = one("Deployment")
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    selector = dep["spec"]["selector"]["matchLabels"]
    check(all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()),
          "Deployment: pod template labels do not match the selector")
    check(set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"},
          f"Deployment: selector must be name+instance only (immutable on upgrade), is {selector}")

    # The restricted Pod Security Standard.
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot is not true")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccompProfile is not RuntimeDefault")
    check(not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"),
          "pod: uses host namespaces")
    containers = spec["containers"]
    check(len(containers) == 1, "pod: want one container")
    c = containers[0]
    sc = c.get("securityContext", {})
    check(sc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation is not false")
    check(sc.get("readOnlyRootFilesystem") is True, "container: readOnlyRootFilesystem is not true")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container: capabilities.drop is not [ALL]")
    check(not sc.get("capabilities", {}).get("add"), "container: adds capabilities")
    check(sc.get("privileged") in (None, False), "container: privileged")
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        check(len(kinds) == 1 and kinds <= RESTRICTED_VOLUME_TYPES,
              f"volume {v['name']}: {sorted(kinds)} is not one volume type the restricted profile allows")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    check(mounts.get("/tmp") == "tmp", "container: /tmp is not the tmp volume")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    check("emptyDir" in vols.get("tmp", {}), "volume tmp: not an emptyDir")
    for m in c.get("volumeMounts", []):
        check(m["name"] in vols, f"mount {m['mountPath']}: no volume {m['name']}")

    # Probes on the health port; ports named as the Service expects.
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") == "health", f"{probe}: not GET {path} on port health")
    check("health" in ports, "container: no health port")

    # Every flag is one kubefold has, with a value, and none twice.
    args = c.get("args", [])
    known = kubefold_flags(binary)
    names = []
    for a in args:
        m = re.match(r"^(--[a-z][a-z0-9-]*)=(.+)$", a)
        if check(m is not None, f"arg {a!r}: not --flag=value"):
            check(m.group(1) in known, f"arg {a!r}: kubefold has no flag {m.group(1)}")
            names.append(m.group(1))
    # extraArgs may repeat a flag on purpose (the last wins in CLI11), the
    # chart's own must not.
    own = names[: len(names) - (1 if variant == "ha" else 0)]
    check(len(own) == len(set(own)), f"args: a flag repeats: {own}")
    argmap = dict(a.split("=", 1) for a in args if "=" in a)
    env = {e["name"]: e for e in c.get("env", [])}
    for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        check(env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == path,
              f"env {name}: not from {path}")
    # The history: the file on its own volume at /var/lib/kubefold, or no
    # file, no volume and no history flags but retention; a claim only with
    # one replica and the Recreate strategy; no claim rendered that the pod
    # does not use.
    history_vol = vols.get("history", {})
    claim = history_vol.get("persistentVolumeClaim", {}).get("claimName")
    strategy = dep["spec"].get("strategy", {}).get("type")
    pvcs = by_kind.get("PersistentVolumeClaim", [])
    if "--history-file" in argmap:
        check(argmap["--history-file"] == HISTORY_FILE, f"--history-file is {argmap['--history-file']}")
        check(mounts.get(HISTORY_DIR) == "history", f"container: {HISTORY_DIR} is not the history volume")
        check(bool(history_vol), "history: --history-file without a history volume")
        check(re.match(r"^[0-9]{1,15}(Ki|Mi|Gi|Ti|k|M|G|T)?$", argmap.get("--history-max-bytes", "")) is not None,
              f"--history-max-bytes {argmap.get('--history-max-bytes')!r} is not a size kubefold reads")
        check(argmap.get("--history-sync") in ("true", "false"), f"--history-sync is {argmap.get('--history-sync')!r}")
    else:
        check(not history_vol and HISTORY_DIR not in mounts, "history: a volume without --history-file")
        check("--history-max-bytes" not in argmap and "--history-sync" not in argmap,
              "history: --history-max-bytes or --history-sync without --history-file")
    check("--history-keep-last" in argmap and "--history-keep-for" in argmap, "history: retention flags missing")
    if claim:
        check(dep["spec"]["replicas"] == 1, f"history on claim {claim}: replicas is {dep['spec']['replicas']}, not 1")
        check(strategy == "Recreate", f"history on claim {claim}: strategy is {strategy}, not Recreate")
    else:
        check(strategy is None, f"history without a claim: strategy {strategy} rendered")
    for pvc in pvcs:
        check(pvc["metadata"]["name"] == claim,
              f"PersistentVolumeClaim {pvc['metadata']['name']}: not the pod's history claim ({claim})")
        check(pvc["metadata"].get("namespace") == dep["metadata"]["namespace"],
              "PersistentVolumeClaim: not in the release namespace")

    def the_pvc():
        check(len(pvcs) == 1, f"{variant}: want one PersistentVolumeClaim, got {len(pvcs)}")
        return pvcs[0] if pvcs else {"metadata": {}, "spec": {}}

    grace = spec.get("terminationGracePeriodSeconds")
    check(argmap.get("--shutdown-timeout") == f"{grace - 5}s",
          f"--shutdown-timeout {argmap.get('--shutdown-timeout')} is not the grace period ({grace}s) less 5s")

    # The Service selects the operator's pods and nothing else (the test pod
    # must not become an endpoint).
    services = by_kind.get("Service", [])
    for svc in services:
        sel = svc["spec"]["selector"]
        check(sel == selector, f"Service: selector {sel} is not the Deployment's {selector}")
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports, f"Service port {p['name']}: targets {p['targetPort']}, not a container port")
    for tp in by_kind.get("Pod", []):
        tl = tp["metadata"]["labels"]
        check(not all(tl.get(k) == v for k, v in selector.items()), "test Pod: carries the operator's selector labels")
        check(tp["metadata"].get("annotations", {}).get("helm.sh/hook") == "test", "test Pod: not a helm test hook")
        for tc in tp["spec"].get("initContainers", []) + tp["spec"]["containers"]:
            tsc = tc.get("securityContext", {})
            check(tsc.get("allowPrivilegeEscalation") is False and tsc.get("capabilities", {}).get("drop") == ["ALL"]
                  and tsc.get("readOnlyRootFilesystem") is True, f"test container {tc['name']}: not restricted")

    sa_name = spec.get("serviceAccountName")
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): r
             for r in by_kind.get("ClusterRole", []) + by_kind.get("Role", [])}

    def secret_rules(role):
        return [r for r in role.get("rules", []) if "secrets" in r.get("resources", [])]

    if variant == "default":
        check(dep["spec"]["replicas"] == 1, "default: replicas is not 1")
        check(c["image"] == "ghcr.io/kubefold/kubefold:0.5.0", f"default: image {c['image']}")
        check(argmap.get("--leader-elect") == "true", "default: leader election is off")
        check(argmap.get("--api-bind-address") == ":8082", "default: API not on :8082")
        check(argmap.get("--log-format") == "json", "default: log format is not json")
        check("--tls-cert-file" not in argmap, "default: TLS flags without TLS")
        check(one("ServiceAccount")["metadata"]["name"] == sa_name == "kubefold", "default: ServiceAccount name")
        cr = roles.get(("ClusterRole", None, "kubefold"), {})
        check(len(secret_rules(cr)) == 1, "default: the ClusterRole does not read Secrets cluster-wide")
        check("PodDisruptionBudget" not in by_kind and "ServiceMonitor" not in by_kind,
              "default: optional objects rendered")
        check(len(by_kind.get("Pod", [])) == 1, "default: no helm test pod")
        check(history_vol == {"name": "history", "emptyDir": {}}, f"default: history volume {history_vol}")
        check(argmap.get("--history-max-bytes") == "1Gi" and argmap.get("--history-sync") == "true",
              "default: history flags")
        check(not pvcs, "default: a PersistentVolumeClaim rendered")
    elif variant == "ha":
        check(dep["spec"]["replicas"] == 3, "ha: replicas is not 3")
        check(c["image"].endswith("@sha256:" + "0123456789abcdef" * 4), f"ha: digest not used: {c['image']}")
        check(c["imagePullPolicy"] == "Always", "ha: pullPolicy")
        check(spec.get("imagePullSecrets") == [{"name": "registry-credentials"}], "ha: imagePullSecrets")
        pdb = one("PodDisruptionBudget")
        check(pdb.get("spec", {}).get("maxUnavailable") == 1 and "minAvailable" not in pdb.get("spec", {}),
              "ha: PDB is not maxUnavailable 1")
        check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == selector, "ha: PDB selector")
        tsc = spec.get("topologySpreadConstraints", [{}])[0]
        check(tsc.get("labelSelector", {}).get("matchLabels") == selector, "ha: spread constraint without selector")
        check(tsc.get("topologyKey") == "topology.kubernetes.io/zone", "ha: spread constraint key")
        check(spec.get("priorityClassName") == "system-cluster-critical", "ha: priorityClassName")
        check(spec.get("nodeSelector") == {"kubernetes.io/os": "linux"}, "ha: nodeSelector")
        check(spec.get("tolerations", [{}])[0].get("key") == "dedicated", "ha: tolerations")
        check("podAntiAffinity" in spec.get("affinity", {}), "ha: affinity")
        check(argmap.get("--log-format") == "text" and argmap.get("--v") == "1", "ha: logging")
        check(argmap.get("--leader-elect-lease-duration") == "30s", "ha: lease duration")
        check(args[-1] == "--member-qps=100", "ha: extraArgs not last")
        check(env.get("MALLOC_ARENA_MAX", {}).get("value") == "4", "ha: extraEnv")
        check(pod["metadata"].get("annotations", {}).get("example.com/team") == "platform", "ha: podAnnotations")
        # Values passed through tpl: templates in them are rendered.
        check(pod["metadata"]["annotations"].get("example.com/namespace") == "kubefold-system",
              "ha: podAnnotations not rendered with tpl")
        check(env.get("RELEASE_ID", {}).get("value") == "kubefold-0.5.0", "ha: extraEnv not rendered with tpl")
        check(pod["metadata"]["labels"].get("example.com/tier") == "control", "ha: podLabels")
        cr = roles.get(("ClusterRole", None, "kubefold"), {})
        check(not secret_rules(cr), "ha: the ClusterRole still reads Secrets cluster-wide")
        for ns in ("kubefold-system", "fleet"):
            r = roles.get(("Role", ns, "kubefold-secrets"))
            check(r is not None and len(secret_rules(r)) == 1, f"ha: no Secret-reading Role in {ns}")
        # Each replica keeps its own history in its own emptyDir.
        check("emptyDir" in history_vol and not pvcs, "ha: history not in an emptyDir per replica")
    elif variant == "tls":
        check(dep["metadata"]["name"] == "fold", "tls: fullnameOverride not used")
        check(sa_name == "fold-operator" and one("ServiceAccount")["metadata"]["name"] == "fold-operator",
              "tls: ServiceAccount name")
        check(argmap.get("--tls-cert-file") == "/etc/kubefold/tls/tls.crt", "tls: no --tls-cert-file")
        check(argmap.get("--tls-private-key-file") == "/etc/kubefold/tls/tls.key", "tls: no --tls-private-key-file")
        check(argmap.get("--api-service-name") == "fold", "tls: --api-service-name is not the Service")
        check(vols.get("tls", {}).get("secret", {}).get("secretName") == "fold-tls", "tls: Secret volume")
        check(mounts.get("/etc/kubefold/tls") == "tls", "tls: Secret not mounted")
        cert = one("Certificate")
        check(cert.get("spec", {}).get("secretName") == "fold-tls", "tls: Certificate secretName")
        check("fold.kubefold-system.svc" in cert.get("spec", {}).get("dnsNames", []), "tls: Certificate dnsNames")
        check(cert.get("spec", {}).get("issuerRef", {}).get("kind") == "ClusterIssuer", "tls: issuerRef")
        sm = one("ServiceMonitor")
        ep = sm.get("spec", {}).get("endpoints", [{}])[0]
        check(ep.get("scheme") == "https" and ep.get("port") == "metrics", "tls: ServiceMonitor endpoint")
        check(ep.get("scrapeTimeout") == "10s", "tls: scrapeTimeout")
        check(sm["metadata"]["labels"].get("release") == "prometheus", "tls: ServiceMonitor labels")
        svc = one("Service")
        check({p["name"]: p["port"] for p in svc["spec"]["ports"]}.get("api") == 443, "tls: Service API port")
        for tp in by_kind.get("Pod", []):
            targs = tp["spec"]["containers"][0]["args"]
            check("--service-scheme=https" in targs and "--service=fold" in targs, "tls: test pod scheme/service")
        rule_names = [n for r in by_kind.get("Role", []) for rule in r.get("rules", [])
                      for n in rule.get("resourceNames", []) if "services/proxy" in rule.get("resources", [])]
        check(rule_names == ["https:fold:api"], f"tls: test Role names {rule_names}")
        check(history_vol.get("emptyDir") == {"sizeLimit": "512Mi"}, f"tls: history volume {history_vol}")
        check(argmap.get("--history-max-bytes") == "384Mi" and argmap.get("--history-sync") == "false",
              "tls: history flags")
    elif variant == "minimal":
        check(argmap.get("--leader-elect") == "false", "minimal: leader election on")
        check(argmap.get("--api-bind-address") == "0" and argmap.get("--metrics-bind-address") == "0",
              "minimal: API or metrics not off")
        check(not any(a.startswith("--leader-elect-") for a in args), "minimal: lease flags without election")
        check(sa_name == "platform-kubefold", "minimal: existing ServiceAccount not used")
        for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Pod"):
            check(kind not in by_kind, f"minimal: {kind} rendered")
        check(set(ports) == {"health"}, f"minimal: ports {sorted(ports)}")
        check("--history-file" not in argmap and "history" not in vols and not pvcs,
              "minimal: history file, volume or claim with history.enabled false")
    elif variant in ("persistence", "persistence-noclass"):
        pvc = the_pvc()
        check(pvc["metadata"].get("name") == "keep-kubefold-history", f"{variant}: claim {pvc['metadata'].get('name')}")
        check(pvc["metadata"].get("annotations") == {"helm.sh/resource-policy": "keep"},
              f"{variant}: claim annotations {pvc['metadata'].get('annotations')}")
        check(pvc["spec"].get("accessModes") == ["ReadWriteOncePod"], f"{variant}: accessModes")
        check(pvc["spec"].get("resources") == {"requests": {"storage": "8Gi"}}, f"{variant}: claim size")
        want_class = "fast-ssd" if variant == "persistence" else ""
        check(pvc["spec"].get("storageClassName", None) == want_class,
              f"{variant}: storageClassName {pvc['spec'].get('storageClassName', '(absent)')!r}, want {want_class!r}")
        check(claim == "keep-kubefold-history", f"{variant}: the pod does not mount the claim")
        check(argmap.get("--history-max-bytes") == "6442450944", f"{variant}: --history-max-bytes "
              f"{argmap.get('--history-max-bytes')} (a YAML number must render as whole bytes)")
        check(argmap.get("--history-sync") == "true", f"{variant}: --history-sync")
    elif variant == "persistence-defaults":
        pvc = the_pvc()
        check(pvc["metadata"].get("name") == "kubefold-history", "persistence-defaults: claim name")
        check("annotations" not in pvc["metadata"], "persistence-defaults: claim annotations")
        check(pvc["spec"].get("accessModes") == ["ReadWriteOnce"], "persistence-defaults: accessModes")
        check(pvc["spec"].get("resources") == {"requests": {"storage": "2Gi"}}, "persistence-defaults: claim size")
        check("storageClassName" not in pvc["spec"],
              "persistence-defaults: storageClassName set (the cluster's default class needs it absent)")
        check(claim == "kubefold-history", "persistence-defaults: the pod does not mount the claim")
        check(argmap.get("--history-max-bytes") == "1Gi", "persistence-defaults: --history-max-bytes")
    elif variant == "persistence-existing":
        check(not pvcs, "persistence-existing: a claim rendered besides the existing one")
        check(claim == "kubefold-history-data", f"persistence-existing: the pod mounts {claim}")
    else:
        check(False, f"unknown variant {variant}")

    for f in FAILURES:
        print(f"check_rendered[{variant}]: {f}")
    if FAILURES:
        sys.exit(1)
    print(f"check_rendered[{variant}]: {len(docs)} objects, all checks passed")


if __name__ == "__main__":
    main()
