#!/usr/bin/env python3
"""Wire-level checks of kube-emulator against ../shared/k8s-wire-spec.md §8.

Starts the kube-emulator binary (path in argv[1] or $KUBE_EMULATOR) with two
clusters, and speaks raw HTTPS to it with the standard library, so every
status code, header, field order and byte of a watch stream is asserted as
a client sees it.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

EMULATOR = os.environ.get("KUBE_EMULATOR") or (sys.argv.pop(1) if len(sys.argv) > 1 else None)
STATUS_ORDER = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
# What kubectl get sends (v1.32).
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
                    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
                    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
                    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")


class Emulator:
    """The kube-emulator process and an HTTPS client for its clusters."""

    def __init__(self, clusters=("a", "b"), extra=()):
        self.dir = tempfile.mkdtemp(prefix="kube-emulator-")
        self.log = open(os.path.join(self.dir, "emulator.log"), "w+")
        self.proc = subprocess.Popen(
            [EMULATOR, "--clusters", ",".join(clusters), "--dir", self.dir,
             "--bookmark-interval-ms", "300", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 20
        state = os.path.join(self.dir, "emulator.json")
        while not os.path.exists(state):
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.seek(0)
                raise RuntimeError("kube-emulator did not start: " + self.log.read())
            time.sleep(0.05)
        with open(state) as f:
            self.state = json.load(f)
        self.ctx = ssl.create_default_context(cafile=self.state["ca"])
        self.clusters = {c["name"]: c for c in self.state["clusters"]}

    def close(self):
        if self.proc.poll() is not None:
            # It died under the tests: its output says why (a sanitizer report).
            self.log.seek(0)
            sys.stderr.write(f"kube-emulator exited with {self.proc.returncode}:\n" + self.log.read())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def token(self, cluster):
        with open(self.clusters[cluster]["tokenFile"]) as f:
            return f.read().strip()

    def port(self, cluster):
        return int(self.clusters[cluster]["url"].rsplit(":", 1)[1])

    def conn(self, cluster, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port(cluster), context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, cluster="a", token=None, headers=None, content_type=None):
        c = self.conn(cluster)
        h = {"Accept": "application/json"}
        if token is None:
            token = self.token(cluster)
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            h["Content-Type"] = content_type or "application/json"
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r, data

    def json(self, method, path, body=None, **kw):
        status, r, data = self.request(method, path, body, **kw)
        return status, json.loads(data, object_pairs_hook=lambda pairs: dict(pairs)) if data else None

    def watch(self, path, cluster="a", timeout=30):
        c = self.conn(cluster, timeout=timeout)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.token(cluster)})
        r = c.getresponse()
        return c, r

    def control(self, cluster, fault, **params):
        q = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.state['control']}/clusters/{cluster}/faults/{fault}" + ("?" + q if q else "")
        with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"")) as r:
            assert r.status == 200, r.status


def read_events(resp, n, timeout=10):
    """The next n watch events (parsed lines)."""
    events = []
    deadline = time.time() + timeout
    while len(events) < n:
        if time.time() > deadline:
            raise AssertionError(f"only {len(events)} of {n} events: {events}")
        line = resp.readline()
        if not line:
            raise AssertionError(f"stream ended after {len(events)} of {n} events: {events}")
        events.append(json.loads(line))
    return events


def cm(name, ns="default", labels=None, data=None):
    o = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}
    if labels:
        o["metadata"]["labels"] = labels
    o["data"] = data or {"k": "v"}
    return o


def deployment(name, replicas=1, image="nginx:1.27"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def status_keys(body):
    return [k for k in body.keys()]


class WireTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator()

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()

    def setUp(self):
        self.emu.control("a", "clear")

    def make_ns(self, name, cluster="a"):
        s, _ = self.emu.json("POST", "/api/v1/namespaces",
                             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, cluster=cluster)
        self.assertEqual(s, 201)

    # --- discovery and auth -------------------------------------------------
    def test_discovery_lists_core_and_groups_with_status_subresources(self):
        s, api = self.emu.json("GET", "/api")
        self.assertEqual((s, api["kind"], api["versions"]), (200, "APIVersions", ["v1"]))
        s, apis = self.emu.json("GET", "/apis")
        names = [g["name"] for g in apis["groups"]]
        # Registration order, as a real server lists groups (authentication,
        # authorization, policy and rbac after apps).
        self.assertEqual(names[:7], ["apps", "authentication.k8s.io", "authorization.k8s.io", "policy",
                                     "rbac.authorization.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"])
        s, apps = self.emu.json("GET", "/apis/apps/v1")
        res = {r["name"]: r for r in apps["resources"]}
        self.assertEqual(res["deployments"]["kind"], "Deployment")
        self.assertEqual(res["deployments"]["shortNames"], ["deploy"])
        self.assertEqual(res["deployments/status"]["verbs"], ["get", "patch", "update"])
        s, _, _ = self.emu.request("GET", "/apis/nope.example.com/v1")
        self.assertEqual(s, 404)

    def test_requests_without_or_with_a_wrong_token_get_401(self):
        s, body = self.emu.json("GET", "/api/v1/namespaces", token="")
        self.assertEqual((s, body["reason"], body["message"]), (401, "Unauthorized", "Unauthorized"))
        s, _ = self.emu.json("GET", "/healthz", token="wrong")
        self.assertEqual(s, 401)
        s, r, data = self.emu.request("GET", "/healthz", token="")
        self.assertEqual((s, data), (200, b"ok"))

    def test_token_rotation_revokes_the_old_token_and_rewrites_the_token_file(self):
        old = self.emu.token("b")
        url = f"{self.emu.state['control']}/clusters/b/tokens/rotate"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"")) as r:
            new = json.load(r)["token"]
        self.assertNotEqual(old, new)
        self.assertEqual(self.emu.token("b"), new)
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces", cluster="b", token=old)[0], 401)
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces", cluster="b", token=new)[0], 200)

    # --- list -----------------------------------------------------------------
    def test_list_shape_items_never_null_and_without_type_fields(self):
        self.make_ns("shape")
        s, body = self.emu.json("GET", "/api/v1/namespaces/shape/configmaps")
        self.assertEqual(s, 200)
        self.assertEqual(list(body.keys()), ["kind", "apiVersion", "metadata", "items"])
        self.assertEqual((body["kind"], body["apiVersion"], body["items"]), ("ConfigMapList", "v1", []))
        self.assertIsInstance(body["metadata"]["resourceVersion"], str)
        self.emu.json("POST", "/api/v1/namespaces/shape/configmaps", cm("one", "shape"))
        s, body = self.emu.json("GET", "/api/v1/namespaces/shape/configmaps")
        self.assertNotIn("kind", body["items"][0])
        self.assertEqual(body["items"][0]["metadata"]["name"], "one")

    def test_pagination_keeps_one_rv_and_counts_remaining_items(self):
        self.make_ns("pages")
        for i in range(25):
            self.emu.json("POST", "/api/v1/namespaces/pages/configmaps", cm(f"c{i:02d}", "pages"))
        s, p1 = self.emu.json("GET", "/api/v1/namespaces/pages/configmaps?limit=10")
        self.assertEqual((len(p1["items"]), p1["metadata"]["remainingItemCount"]), (10, 15))
        rv = p1["metadata"]["resourceVersion"]
        # A write between pages does not show up: pages are consistent at rv.
        self.emu.json("POST", "/api/v1/namespaces/pages/configmaps", cm("c99", "pages"))
        names = [i["metadata"]["name"] for i in p1["items"]]
        token = p1["metadata"]["continue"]
        while token:
            s, p = self.emu.json("GET", f"/api/v1/namespaces/pages/configmaps?limit=10&continue={token}")
            self.assertEqual((s, p["metadata"]["resourceVersion"]), (200, rv))
            names += [i["metadata"]["name"] for i in p["items"]]
            token = p["metadata"].get("continue")
        self.assertEqual(names, [f"c{i:02d}" for i in range(25)])
        s, sel = self.emu.json("GET", "/api/v1/namespaces/pages/configmaps?limit=5&labelSelector=x!%3Dy")
        self.assertIn("continue", sel["metadata"])
        self.assertNotIn("remainingItemCount", sel["metadata"])

    def test_list_option_validation_errors(self):
        s, p = self.emu.json("GET", "/api/v1/configmaps?limit=1")
        s, body = self.emu.json("GET", "/api/v1/configmaps?limit=1&resourceVersion=5&continue=" + p["metadata"]["continue"])
        self.assertEqual((s, body["message"]), (400, "specifying resource version is not allowed when using continue"))
        s, body = self.emu.json("GET", "/api/v1/configmaps?resourceVersionMatch=NotOlderThan")
        self.assertEqual((s, body["reason"]), (422, "Invalid"))
        self.assertEqual(body["details"]["causes"][0]["field"], "resourceVersionMatch")
        s, body = self.emu.json("GET", "/api/v1/configmaps?resourceVersionMatch=Exact&resourceVersion=0")
        self.assertEqual(s, 422)
        s, body = self.emu.json("GET", "/api/v1/configmaps?sendInitialEvents=true")
        self.assertEqual((s, body["details"]["causes"][0]["field"]), (422, "sendInitialEvents"))
        s, body = self.emu.json("GET", "/api/v1/configmaps?labelSelector=a%20in%20(b")
        self.assertEqual(s, 400)
        s, body = self.emu.json("GET", "/api/v1/configmaps?fieldSelector=spec.nope%3Dx")
        self.assertEqual((s, body["message"]), (400, "field label not supported: spec.nope"))

    def test_expired_continue_token_is_410_expired(self):
        self.make_ns("expire")
        for i in range(3):
            self.emu.json("POST", "/api/v1/namespaces/expire/configmaps", cm(f"e{i}", "expire"))
        s, p1 = self.emu.json("GET", "/api/v1/namespaces/expire/configmaps?limit=1")
        self.emu.control("a", "compact")
        s, body = self.emu.json("GET", "/api/v1/namespaces/expire/configmaps?limit=1&continue=" + p1["metadata"]["continue"])
        self.assertEqual((s, body["reason"], body["code"]), (410, "Expired", 410))
        self.assertTrue(body["message"].startswith("The provided continue parameter is too old"))
        self.assertEqual(status_keys(body), ["kind", "apiVersion", "metadata", "status", "message", "reason", "code"])
        # The same answer when tokens simply got old (the expire-continue fault).
        s, p2 = self.emu.json("GET", "/api/v1/namespaces/expire/configmaps?limit=1")
        self.emu.control("a", "expire-continue", on="true")
        s, body = self.emu.json("GET", "/api/v1/namespaces/expire/configmaps?limit=1&continue=" + p2["metadata"]["continue"])
        self.assertEqual((s, body["reason"]), (410, "Expired"))

    def test_exact_list_serves_an_older_state(self):
        self.make_ns("exact")
        self.emu.json("POST", "/api/v1/namespaces/exact/configmaps", cm("gone", "exact"))
        s, before = self.emu.json("GET", "/api/v1/namespaces/exact/configmaps")
        self.emu.json("DELETE", "/api/v1/namespaces/exact/configmaps/gone")
        rv = before["metadata"]["resourceVersion"]
        s, old = self.emu.json("GET", f"/api/v1/namespaces/exact/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact")
        self.assertEqual((s, [i["metadata"]["name"] for i in old["items"]]), (200, ["gone"]))
        s, now = self.emu.json("GET", f"/api/v1/namespaces/exact/configmaps?resourceVersion={rv}")
        self.assertEqual(now["items"], [])  # not older than: the current state

    def test_too_large_resource_version_is_504_after_waiting(self):
        started = time.time()
        s, body = self.emu.json("GET", "/api/v1/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan")
        self.assertGreaterEqual(time.time() - started, 2.5)
        self.assertEqual((s, body["reason"]), (504, "Timeout"))
        self.assertTrue(body["message"].startswith("Timeout: Too large resource version: 999999999, current: "))
        self.assertEqual(body["details"]["causes"], [{"reason": "ResourceVersionTooLarge",
                                                      "message": "Too large resource version"}])
        self.assertEqual(body["details"]["retryAfterSeconds"], 1)

    # --- watch ----------------------------------------------------------------
    def test_watch_flushes_headers_then_sends_one_event_per_line(self):
        self.make_ns("w1")
        c, r = self.emu.watch("/api/v1/namespaces/w1/configmaps?watch=1&timeoutSeconds=30")
        self.assertEqual((r.status, r.getheader("Content-Type"), r.getheader("Transfer-Encoding")),
                         (200, "application/json", "chunked"))
        s, made = self.emu.json("POST", "/api/v1/namespaces/w1/configmaps", cm("x", "w1"))
        ev = read_events(r, 1)[0]
        self.assertEqual((ev["type"], ev["object"]["kind"], ev["object"]["apiVersion"]), ("ADDED", "ConfigMap", "v1"))
        self.assertEqual(ev["object"]["metadata"]["resourceVersion"], made["metadata"]["resourceVersion"])
        s, deleted = self.emu.json("DELETE", "/api/v1/namespaces/w1/configmaps/x")
        ev = read_events(r, 1)[0]
        self.assertEqual(ev["type"], "DELETED")
        self.assertGreater(int(ev["object"]["metadata"]["resourceVersion"]), int(made["metadata"]["resourceVersion"]))
        c.close()

    def test_watch_rv_semantics_synthetic_added_then_only_later_events(self):
        self.make_ns("w2")
        s, a = self.emu.json("POST", "/api/v1/namespaces/w2/configmaps", cm("a", "w2"))
        s, b = self.emu.json("POST", "/api/v1/namespaces/w2/configmaps", cm("b", "w2"))
        c, r = self.emu.watch("/api/v1/namespaces/w2/configmaps?watch=true&resourceVersion=0&timeoutSeconds=30")
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in read_events(r, 2)],
                         [("ADDED", "a"), ("ADDED", "b")])
        c.close()
        c, r = self.emu.watch("/api/v1/namespaces/w2/configmaps?watch=true&resourceVersion="
                              + a["metadata"]["resourceVersion"] + "&timeoutSeconds=30")
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in read_events(r, 1)], [("ADDED", "b")])
        c.close()

    def test_bookmarks_only_when_allowed_and_carry_only_the_rv(self):
        self.make_ns("w3")
        c, r = self.emu.watch("/api/v1/namespaces/w3/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=30")
        ev = read_events(r, 1)[0]
        self.assertEqual(ev["type"], "BOOKMARK")
        self.assertEqual(list(ev["object"]["metadata"].keys()), ["resourceVersion", "creationTimestamp"])
        c.close()
        c, r = self.emu.watch("/api/v1/namespaces/w3/configmaps?watch=1&timeoutSeconds=2")
        started = time.time()
        self.assertEqual(r.read(), b"")  # no bookmarks, then a clean end at the deadline
        self.assertGreaterEqual(time.time() - started, 1.5)
        c.close()

    def test_selector_transitions_become_added_and_deleted(self):
        self.make_ns("w4")
        s, o = self.emu.json("POST", "/api/v1/namespaces/w4/configmaps", cm("t", "w4", labels={"tier": "web"}))
        c, r = self.emu.watch("/api/v1/namespaces/w4/configmaps?watch=1&labelSelector=tier%3Dweb&resourceVersion="
                              + o["metadata"]["resourceVersion"] + "&timeoutSeconds=30")
        s, p = self.emu.json("PATCH", "/api/v1/namespaces/w4/configmaps/t", {"metadata": {"labels": {"tier": "db"}}},
                             content_type="application/merge-patch+json")
        s, q = self.emu.json("PATCH", "/api/v1/namespaces/w4/configmaps/t", {"metadata": {"labels": {"tier": "web"}}},
                             content_type="application/merge-patch+json")
        evs = read_events(r, 2)
        self.assertEqual([e["type"] for e in evs], ["DELETED", "ADDED"])
        self.assertEqual(evs[0]["object"]["metadata"]["resourceVersion"], p["metadata"]["resourceVersion"])
        self.assertEqual(evs[0]["object"]["metadata"]["labels"], {"tier": "web"})  # the previous state
        c.close()

    def test_watch_from_a_compacted_rv_is_200_then_one_error_410(self):
        s, lst = self.emu.json("GET", "/api/v1/configmaps")
        self.emu.control("a", "compact")
        c, r = self.emu.watch("/api/v1/configmaps?watch=1&resourceVersion=" + lst["metadata"]["resourceVersion"])
        self.assertEqual(r.status, 200)
        ev = read_events(r, 1)[0]
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(list(ev["object"].keys()), ["kind", "apiVersion", "metadata", "status", "message", "reason", "code"])
        self.assertEqual((ev["object"]["reason"], ev["object"]["code"]), ("Expired", 410))
        self.assertRegex(ev["object"]["message"], r"^too old resource version: \d+ \(\d+\)$")
        self.assertEqual(r.read(), b"")
        c.close()
        self.emu.control("a", "expired-reason", reason="Gone")
        c, r = self.emu.watch("/api/v1/configmaps?watch=1&resourceVersion=" + lst["metadata"]["resourceVersion"])
        self.assertEqual(read_events(r, 1)[0]["object"]["reason"], "Gone")
        c.close()

    def test_streaming_list_ends_initial_events_with_the_annotated_bookmark(self):
        self.make_ns("w5")
        for n in ("p", "q"):
            self.emu.json("POST", "/api/v1/namespaces/w5/configmaps", cm(n, "w5"))
        s, lst = self.emu.json("GET", "/api/v1/namespaces/w5/configmaps")
        c, r = self.emu.watch("/api/v1/namespaces/w5/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                              "&resourceVersionMatch=NotOlderThan&timeoutSeconds=30")
        evs = read_events(r, 3)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "ADDED", "BOOKMARK"])
        self.assertEqual(evs[2]["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"})
        self.assertEqual(evs[2]["object"]["metadata"]["resourceVersion"], lst["metadata"]["resourceVersion"])
        c.close()
        s, body = self.emu.json("GET", "/api/v1/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true")
        self.assertEqual((s, body["details"]["causes"][0]["field"]), (422, "resourceVersionMatch"))

    def test_watch_list_switch_rejects_with_the_exact_422(self):
        self.emu.control("a", "watch-list", on="false")
        s, r, data = self.emu.request("GET", "/api/v1/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                             "&resourceVersionMatch=NotOlderThan")
        self.assertEqual(s, 422)
        self.assertEqual(data.decode(), '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                         '"ListOptions.meta.k8s.io \\"\\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is '
                         'forbidden for watch unless the WatchList feature gate is enabled","reason":"Invalid","details":'
                         '{"group":"meta.k8s.io","kind":"ListOptions","causes":[{"reason":"FieldValueForbidden","message":'
                         '"Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",'
                         '"field":"sendInitialEvents"}]},"code":422}')

    def test_split_chunks_still_deliver_every_line(self):
        self.make_ns("w6")
        for i in range(20):
            self.emu.json("POST", "/api/v1/namespaces/w6/configmaps", cm(f"s{i}", "w6", data={"v": "x" * 300}))
        self.emu.control("a", "split-chunks", on="true")
        c, r = self.emu.watch("/api/v1/namespaces/w6/configmaps?watch=1&timeoutSeconds=30")
        self.assertEqual(len(read_events(r, 20)), 20)
        c.close()

    def test_drop_watches_ends_streams_cleanly_or_with_a_reset(self):
        s, lst = self.emu.json("GET", "/api/v1/configmaps")
        rv = lst["metadata"]["resourceVersion"]
        c, r = self.emu.watch(f"/api/v1/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=60")
        time.sleep(0.2)
        started = time.time()
        self.emu.control("a", "drop-watches")
        self.assertEqual(r.read(), b"")  # the terminating chunk, long before the 60 s deadline
        self.assertLess(time.time() - started, 10)
        c.close()
        c, r = self.emu.watch(f"/api/v1/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=60")
        time.sleep(0.2)
        self.emu.control("a", "drop-watches", mode="reset")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            r.read()
        c.close()

    def test_get_of_one_object_ignores_watch_and_returns_the_object(self):
        self.emu.json("POST", "/api/v1/namespaces/default/configmaps", cm("one-obj"))
        s, r, data = self.emu.request("GET", "/api/v1/namespaces/default/configmaps/one-obj?watch=true")
        self.assertEqual((s, r.getheader("Transfer-Encoding")), (200, None))
        self.assertEqual(json.loads(data)["metadata"]["name"], "one-obj")

    def test_send_initial_events_without_bookmarks_or_set_false(self):
        self.make_ns("w7")
        self.emu.json("POST", "/api/v1/namespaces/w7/configmaps", cm("x", "w7"))
        # Accepted without allowWatchBookmarks, but then no end bookmark comes.
        c, r = self.emu.watch("/api/v1/namespaces/w7/configmaps?watch=1&sendInitialEvents=true"
                              "&resourceVersionMatch=NotOlderThan&timeoutSeconds=2")
        self.assertEqual(r.status, 200)
        lines = [json.loads(l) for l in r.read().splitlines()]
        self.assertEqual([e["type"] for e in lines], ["ADDED"])
        c.close()
        # sendInitialEvents=false: no replay of the current state.
        c, r = self.emu.watch("/api/v1/namespaces/w7/configmaps?watch=1&sendInitialEvents=false"
                              "&resourceVersionMatch=NotOlderThan&timeoutSeconds=2")
        self.assertEqual((r.status, r.read()), (200, b""))
        c.close()

    def test_a_watch_that_keeps_up_survives_history_trimming(self):
        small = Emulator(clusters=("s",), extra=("--max-events", "5"))
        try:
            c, r = small.watch("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=30", cluster="s")
            for i in range(20):  # other resources' writes push history out
                small.json("POST", "/api/v1/namespaces/default/secrets",
                           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}}, cluster="s")
            time.sleep(0.5)
            small.json("POST", "/api/v1/namespaces/default/configmaps", cm("after"), cluster="s")
            ev = read_events(r, 1)[0]
            self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "after"))
            c.close()
        finally:
            small.close()

    # --- status bodies and writes --------------------------------------------
    def test_status_bodies_for_404_409_and_stale_updates(self):
        self.make_ns("st")
        s, body = self.emu.json("GET", "/api/v1/namespaces/st/configmaps/nope")
        self.assertEqual(s, 404)
        self.assertEqual(status_keys(body), STATUS_ORDER)
        self.assertEqual(body["message"], 'configmaps "nope" not found')
        self.assertEqual(body["details"], {"name": "nope", "kind": "configmaps"})
        s, made = self.emu.json("POST", "/api/v1/namespaces/st/configmaps", cm("dup", "st"))
        s, body = self.emu.json("POST", "/api/v1/namespaces/st/configmaps", cm("dup", "st"))
        self.assertEqual((s, body["reason"], body["message"]), (409, "AlreadyExists", 'configmaps "dup" already exists'))
        stale = dict(made)
        s, upd = self.emu.json("PUT", "/api/v1/namespaces/st/configmaps/dup", dict(made, data={"k": "v2"}))
        self.assertEqual(s, 200)
        s, body = self.emu.json("PUT", "/api/v1/namespaces/st/configmaps/dup", dict(stale, data={"k": "v3"}))
        self.assertEqual((s, body["reason"]), (409, "Conflict"))
        self.assertEqual(body["message"], 'Operation cannot be fulfilled on configmaps "dup": the object has been '
                                          'modified; please apply your changes to the latest version and try again')
        s, body = self.emu.json("POST", "/api/v1/namespaces/nowhere/configmaps", cm("x", "nowhere"))
        self.assertEqual((s, body["message"]), (404, 'namespaces "nowhere" not found'))

    def test_invalid_deployment_is_422_with_causes(self):
        bad = deployment("bad")
        bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        s, body = self.emu.json("POST", "/apis/apps/v1/namespaces/default/deployments", bad)
        self.assertEqual((s, body["reason"]), (422, "Invalid"))
        self.assertEqual(body["details"]["kind"], "Deployment")
        self.assertEqual(body["details"]["causes"][0]["field"], "spec.template.metadata.labels")
        self.assertTrue(body["message"].startswith('Deployment.apps "bad" is invalid: spec.template.metadata.labels: '))

    def test_update_bumps_generation_only_for_spec_changes_and_status_is_separate(self):
        s, d = self.emu.json("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("gen"))
        self.assertEqual((s, d["metadata"]["generation"]), (201, 1))
        d["spec"]["replicas"] = 3
        d["status"] = {"replicas": 3}
        s, d2 = self.emu.json("PUT", "/apis/apps/v1/namespaces/default/deployments/gen", d)
        self.assertEqual((d2["metadata"]["generation"], d2.get("status")), (2, None))
        s, d3 = self.emu.json("PUT", "/apis/apps/v1/namespaces/default/deployments/gen/status", dict(d2, status={"replicas": 3}))
        self.assertEqual((s, d3["status"], d3["metadata"]["generation"]), (200, {"replicas": 3}, 2))
        s, same = self.emu.json("PUT", "/apis/apps/v1/namespaces/default/deployments/gen", d3)
        self.assertEqual(same["metadata"]["resourceVersion"], d3["metadata"]["resourceVersion"])  # a no-op

    def test_merge_json_and_strategic_patches(self):
        s, d = self.emu.json("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("pt"))
        s, m = self.emu.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/pt", {"spec": {"replicas": 4}},
                             content_type="application/merge-patch+json")
        self.assertEqual((s, m["spec"]["replicas"]), (200, 4))
        s, j = self.emu.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/pt",
                             [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                             content_type="application/json-patch+json")
        self.assertEqual((s, j["spec"]["replicas"]), (200, 5))
        s, sm = self.emu.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/pt",
                              {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}},
                              content_type="application/strategic-merge-patch+json")
        # Merged by name; without $setElementOrder the patch's items come
        # first (apimachinery's mergeSortedSlice puts unknown positions first).
        self.assertEqual([c["name"] for c in sm["spec"]["template"]["spec"]["containers"]], ["side", "main"])
        s, body = self.emu.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/pt", {"a": 1},
                                content_type="text/plain")
        self.assertEqual((s, body["reason"]), (415, "UnsupportedMediaType"))

    def test_server_side_apply_conflicts_and_force(self):
        cfg = deployment("ssa", replicas=2)
        path = "/apis/apps/v1/namespaces/default/deployments/ssa"
        s, body = self.emu.json("PATCH", path, cfg, content_type="application/apply-patch+yaml")
        self.assertEqual((s, body["details"]["causes"][0]["field"]), (422, "fieldManager"))
        s, made = self.emu.json("PATCH", path + "?fieldManager=alpha", cfg, content_type="application/apply-patch+yaml")
        self.assertEqual(s, 201)
        self.assertEqual([m["manager"] for m in made["metadata"]["managedFields"]], ["alpha"])
        self.assertEqual(made["metadata"]["managedFields"][0]["operation"], "Apply")
        other = deployment("ssa", replicas=7)
        s, body = self.emu.json("PATCH", path + "?fieldManager=beta", other, content_type="application/apply-patch+yaml")
        self.assertEqual((s, body["reason"]), (409, "Conflict"))
        self.assertIn({"reason": "FieldManagerConflict", "message": 'conflict with "alpha"', "field": ".spec.replicas"},
                      body["details"]["causes"])
        s, forced = self.emu.json("PATCH", path + "?fieldManager=beta&force=true", other,
                                  content_type="application/apply-patch+yaml")
        self.assertEqual((s, forced["spec"]["replicas"]), (200, 7))
        s, body = self.emu.json("PATCH", path + "?force=true", {"spec": {}}, content_type="application/merge-patch+json")
        self.assertEqual((s, body["details"]["causes"][0]["field"]), (422, "force"))

    def test_lease_microtime_and_lost_race(self):
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "leader", "namespace": "kube-system"},
                 "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                          "acquireTime": "2026-11-22T10:00:00.000000Z", "renewTime": "2026-11-22T10:00:00.000000Z",
                          "leaseTransitions": 0}}
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        s, made = self.emu.json("POST", path, lease)
        self.assertEqual((s, made["spec"]["renewTime"]), (201, "2026-11-22T10:00:00.000000Z"))
        s, _ = self.emu.json("POST", path, lease)
        self.assertEqual(s, 409)
        upd = dict(made, spec=dict(made["spec"], holderIdentity="b"))
        s, _ = self.emu.json("PUT", path + "/leader", upd)
        self.assertEqual(s, 200)
        s, body = self.emu.json("PUT", path + "/leader", upd)  # the same, now stale, RV
        self.assertEqual((s, body["reason"]), (409, "Conflict"))
        bad = dict(lease, metadata={"name": "bad", "namespace": "kube-system"},
                   spec=dict(lease["spec"], renewTime="yesterday"))
        self.assertEqual(self.emu.json("POST", path, bad)[0], 400)

    def test_crd_becomes_servable_with_pruning_strict_validation_and_no_strategic_merge(self):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "subresources": {"status": {}},
                                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                          "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                                          "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
        s, made = self.emu.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual(s, 201)
        self.assertEqual([c["type"] for c in made["status"]["conditions"]], ["NamesAccepted", "Established"])
        w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
             "spec": {"size": 3, "color": "red"}}
        s, body = self.emu.json("POST", "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict", w)
        self.assertEqual((s, body["message"]), (400, 'strict decoding error: unknown field "spec.color"'))
        s, r, data = self.emu.request("POST", "/apis/example.com/v1/namespaces/default/widgets", w)
        self.assertEqual(s, 201)
        self.assertEqual(json.loads(data)["spec"], {"size": 3})
        self.assertIn("unknown field", r.getheader("Warning"))
        s, body = self.emu.json("POST", "/apis/example.com/v1/namespaces/default/widgets",
                                dict(w, metadata={"name": "w2"}, spec={"size": "big"}))
        self.assertEqual((s, body["reason"]), (422, "Invalid"))
        # A null where the schema allows none is pruned, not refused.
        s, made = self.emu.json("POST", "/apis/example.com/v1/namespaces/default/widgets",
                                dict(w, metadata={"name": "w3"}, spec={"size": None}))
        self.assertEqual((s, made["spec"]), (201, {}))
        s, body = self.emu.json("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w", {"spec": {"size": 4}},
                                content_type="application/strategic-merge-patch+json")
        self.assertEqual(s, 415)
        s, _ = self.emu.json("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        self.assertEqual(s, 200)
        self.assertEqual(self.emu.json("GET", "/apis/example.com/v1/namespaces/default/widgets")[0], 404)

    def test_unconditional_updates_deletes_and_names_as_the_registries_rule(self):
        path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l1"},
                 "spec": {"holderIdentity": "a"}}
        s, made = self.emu.json("PUT", path + "/l1", lease)  # a PUT creates a missing Lease
        self.assertEqual(s, 201)
        s, body = self.emu.json("PUT", path + "/l1", dict(lease, spec={"holderIdentity": "b"}))
        self.assertEqual((s, body["reason"]), (422, "Invalid"))
        self.assertEqual(body["details"]["causes"][0]["field"], "metadata.resourceVersion")
        s, _ = self.emu.json("PUT", "/api/v1/namespaces/default/configmaps/nope", cm("nope"))
        self.assertEqual(s, 404)  # configmaps neither create on update nor need an RV
        s, cur = self.emu.json("POST", "/api/v1/namespaces/default/configmaps", cm("uid-check"))
        stale = dict(cur, metadata=dict(cur["metadata"], uid="00000000-0000-4000-8000-000000000000"))
        s, body = self.emu.json("PUT", "/api/v1/namespaces/default/configmaps/uid-check", stale)
        self.assertEqual((s, body["reason"]), (409, "Conflict"))
        self.assertIn("Precondition failed: UID in precondition: 00000000-0000-4000-8000-000000000000", body["message"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        self.emu.json("POST", "/api/v1/namespaces/default/pods", pod)
        s, body = self.emu.json("DELETE", "/api/v1/namespaces/default/pods/p1")
        self.assertEqual((s, body["kind"], body["metadata"]["name"]), (200, "Pod", "p1"))
        s, _ = self.emu.json("DELETE", "/api/v1/configmaps")
        self.assertEqual(s, 405)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1svc"}, "spec": {}}
        s, body = self.emu.json("POST", "/api/v1/namespaces/default/services", svc)
        self.assertEqual((s, body["details"]["causes"][0]["field"]), (422, "metadata.name"))

    def test_finalizers_keep_a_deleted_object_until_removed(self):
        o = cm("fin", data={"a": "b"})
        o["metadata"]["finalizers"] = ["example.com/hold"]
        s, made = self.emu.json("POST", "/api/v1/namespaces/default/configmaps", o)
        s, term = self.emu.json("DELETE", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(s, 200)
        self.assertIn("deletionTimestamp", term["metadata"])
        s, _ = self.emu.json("PATCH", "/api/v1/namespaces/default/configmaps/fin", {"metadata": {"finalizers": None}},
                             content_type="application/merge-patch+json")
        self.assertEqual(s, 200)
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces/default/configmaps/fin")[0], 404)

    # --- faults ---------------------------------------------------------------
    def test_429_is_plain_text_with_retry_after_and_500_is_a_status(self):
        self.emu.control("a", "fail", count=1, code=429, retryAfter=2)
        s, r, data = self.emu.request("GET", "/api/v1/namespaces")
        self.assertEqual((s, r.getheader("Retry-After"), data), (429, "2", b"Too many requests, please try again later.\n"))
        self.emu.control("a", "fail", count=1, code=500, retryAfter=-1)
        s, body = self.emu.json("GET", "/api/v1/namespaces")
        self.assertEqual((s, body["reason"]), (500, "InternalError"))
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces")[0], 200)

    def test_partition_refuses_connections_until_healed(self):
        self.emu.control("b", "partition")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.emu.port("b")), timeout=5)
        self.emu.control("b", "heal")
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces", cluster="b")[0], 200)

    # --- server-side printing (as=Table) --------------------------------------
    def make_gadgets(self, ns):
        """A CRD with printer columns (made once) and, in a new namespace, two
        gadgets, the first with a status."""
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "gadgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "subresources": {"status": {}},
                                      "additionalPrinterColumns": [
                                          {"name": "Ready", "type": "string",
                                           "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                                          {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                                          {"name": "Note", "type": "string", "jsonPath": ".spec.note",
                                           "description": "A note.", "priority": 1},
                                          {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                          "spec": {"type": "object", "properties": {
                                              "size": {"type": "integer"}, "note": {"type": "string"}}},
                                          "status": {"type": "object",
                                                     "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
        s, _ = self.emu.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertIn(s, (201, 409))
        self.make_ns(ns)
        base = f"/apis/example.com/v1/namespaces/{ns}/gadgets"
        for name, size in (("g1", 3), ("g2", 5)):
            s, _ = self.emu.json("POST", base, {"apiVersion": "example.com/v1", "kind": "Gadget",
                                                "metadata": {"name": name, "labels": {"app": "x"}},
                                                "spec": {"size": size}})
            self.assertEqual(s, 201)
        s, g1 = self.emu.json("PATCH", base + "/g1/status",
                              {"status": {"conditions": [{"type": "Synced", "status": "False"},
                                                         {"type": "Ready", "status": "True"}]}},
                              content_type="application/merge-patch+json")
        self.assertEqual(s, 200)
        return base, g1

    def table(self, path, accept=TABLE_ACCEPT):
        s, r, data = self.emu.request("GET", path, headers={"Accept": accept})
        return s, r, data, (json.loads(data) if data else None)

    def test_table_of_a_custom_resource_has_its_printer_columns_and_row_metadata(self):
        base, g1 = self.make_gadgets("gadgets-a")
        s, r, raw, t = self.table(base + "/g1")
        self.assertEqual((s, r.getheader("Content-Type")), (200, "application/json"))
        self.assertEqual(list(t.keys()), ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"])
        self.assertEqual((t["kind"], t["apiVersion"]), ("Table", "meta.k8s.io/v1"))
        self.assertEqual(t["metadata"], {"resourceVersion": g1["metadata"]["resourceVersion"]})
        cols = t["columnDefinitions"]
        self.assertEqual([c["name"] for c in cols], ["Name", "Ready", "Size", "Note", "Age"])
        for c in cols:
            self.assertEqual(list(c.keys()), ["name", "type", "format", "description", "priority"])
        self.assertEqual(cols[0], {"name": "Name", "type": "string", "format": "name",
                                   "description": NAME_DESCRIPTION, "priority": 0})
        self.assertEqual(cols[1]["description"],
                         'Custom resource definition column (in JSONPath format): .status.conditions[?(@.type=="Ready")].status')
        self.assertEqual((cols[3]["description"], cols[3]["priority"]), ("A note.", 1))
        self.assertEqual((cols[4]["type"], cols[4]["format"]), ("date", ""))
        row = t["rows"][0]
        self.assertEqual(list(row.keys()), ["cells", "object"])
        name, ready, size, note, age = row["cells"]
        self.assertEqual((name, ready, size, note), ("g1", "True", 3, None))
        self.assertRegex(age, r"^\d+s$")  # an age, as HumanDuration writes it
        obj = row["object"]
        self.assertEqual((obj["kind"], obj["apiVersion"]), ("PartialObjectMetadata", "meta.k8s.io/v1"))
        self.assertEqual(list(obj.keys()), ["kind", "apiVersion", "metadata"])
        self.assertEqual(obj["metadata"]["uid"], g1["metadata"]["uid"])
        self.assertEqual(obj["metadata"]["labels"], {"app": "x"})
        self.assertNotIn("spec", obj)
        # includeObject=None: a null object; Object: the whole custom resource.
        s, r, raw, t = self.table(base + "?includeObject=None")
        self.assertEqual(s, 200)
        self.assertEqual([row["cells"][:3] for row in t["rows"]], [["g1", "True", 3], ["g2", None, 5]])
        self.assertEqual([row["object"] for row in t["rows"]], [None, None])
        self.assertIn(b'"object":null', raw)
        s, r, raw, t = self.table(base + "/g2?includeObject=Object")
        self.assertEqual((t["rows"][0]["object"]["kind"], t["rows"][0]["object"]["spec"]), ("Gadget", {"size": 5}))
        s, body = self.emu.json("GET", base + "?includeObject=Everything", headers={"Accept": TABLE_ACCEPT})
        self.assertEqual((s, body["reason"], body["message"]),
                         (400, "BadRequest", 'Unable to convert to Table as requested: includeObject: Unsupported value: '
                                             '"Everything": supported values: "Metadata", "None", "Object"'))

    def test_table_lists_page_with_continue_and_negotiate_like_a_server(self):
        base, _ = self.make_gadgets("gadgets-b")
        s, _, _, p1 = self.table(base + "?limit=1")
        self.assertEqual(s, 200)
        self.assertEqual(list(p1["metadata"].keys()), ["resourceVersion", "continue", "remainingItemCount"])
        self.assertEqual((len(p1["rows"]), p1["metadata"]["remainingItemCount"]), (1, 1))
        s, _, _, p2 = self.table(base + "?limit=1&continue=" + p1["metadata"]["continue"])
        self.assertEqual((s, p2["metadata"]["resourceVersion"]), (200, p1["metadata"]["resourceVersion"]))
        self.assertNotIn("continue", p2["metadata"])
        self.assertEqual([r["cells"][0] for r in p1["rows"] + p2["rows"]], ["g1", "g2"])
        # Only meta.k8s.io v1/v1beta1 Tables; plain JSON otherwise; 406 when nothing fits.
        s, _, _, beta = self.table(base, "application/json;as=Table;v=v1beta1;g=meta.k8s.io")
        self.assertEqual((beta["apiVersion"], beta["rows"][0]["object"]["apiVersion"]),
                         ("meta.k8s.io/v1beta1", "meta.k8s.io/v1beta1"))
        s, _, _, plain = self.table(base, "application/json")
        self.assertEqual(plain["kind"], "GadgetList")
        s, _, _, plain = self.table(base, "application/json;as=Table;v=v2;g=meta.k8s.io, application/json")
        self.assertEqual(plain["kind"], "GadgetList")
        s, _, _, body = self.table(base, "application/json;as=Table;v=v2;g=meta.k8s.io")
        self.assertEqual((s, body["reason"], body["message"]),
                         (406, "NotAcceptable", "only the following media types are accepted: application/json, "
                                                "application/yaml, application/vnd.kubernetes.protobuf"))
        s, _, _, body = self.table(base + "/g1", "text/html")
        self.assertEqual(s, 406)
        # Printer columns are validated as the apiextensions server does.
        bad = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "things.example.com"},
               "spec": {"group": "example.com", "scope": "Cluster",
                        "names": {"plural": "things", "kind": "Thing"},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "additionalPrinterColumns": [{"name": "X", "type": "text", "jsonPath": ".x"}],
                                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
        s, body = self.emu.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
        self.assertEqual((s, body["details"]["causes"][0]["field"], body["details"]["causes"][0]["message"]),
                         (422, "spec.versions[0].additionalPrinterColumns[0].type",
                          'Invalid value: "text": must be one of boolean,date,integer,number,string'))
        # The default table of types without a printer (CRDs) and a built-in printer's.
        s, _, _, crds = self.table("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        self.assertEqual([c["name"] for c in crds["columnDefinitions"]], ["Name", "Created At"])
        self.assertRegex(crds["rows"][0]["cells"][1], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.emu.json("POST", "/apis/apps/v1/namespaces/gadgets-b/deployments", deployment("web", replicas=2))
        s, _, _, deps = self.table("/apis/apps/v1/namespaces/gadgets-b/deployments")
        self.assertEqual([(c["name"], c["priority"]) for c in deps["columnDefinitions"]],
                         [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0),
                          ("Containers", 1), ("Images", 1), ("Selector", 1)])
        self.assertEqual(deps["rows"][0]["cells"][:4] + deps["rows"][0]["cells"][5:],
                         ["web", "0/2", 0, 0, "main", "nginx:1.27", "app=web"])

    def test_table_watch_sends_one_row_tables_with_headers_only_first(self):
        base, g1 = self.make_gadgets("gadgets-c")
        c = self.emu.conn("a")
        c.request("GET", base + "?watch=true&resourceVersion=" + g1["metadata"]["resourceVersion"],
                  headers={"Authorization": "Bearer " + self.emu.token("a"), "Accept": TABLE_ACCEPT})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.emu.json("PATCH", base + "/g2", {"spec": {"size": 6}}, content_type="application/merge-patch+json")
        self.emu.json("DELETE", base + "/g1")
        events = read_events(r, 2)
        c.close()
        self.assertEqual([e["type"] for e in events], ["MODIFIED", "DELETED"])
        first, second = events[0]["object"], events[1]["object"]
        self.assertEqual((first["kind"], first["apiVersion"]), ("Table", "meta.k8s.io/v1"))
        self.assertEqual([col["name"] for col in first["columnDefinitions"]], ["Name", "Ready", "Size", "Note", "Age"])
        self.assertIsNone(second["columnDefinitions"])
        self.assertEqual([row["cells"][:3] for row in first["rows"]], [["g2", None, 6]])
        self.assertEqual([row["cells"][:3] for row in second["rows"]], [["g1", "True", 3]])
        self.assertEqual(second["metadata"]["resourceVersion"], second["rows"][0]["object"]["metadata"]["resourceVersion"])

    def test_clusters_have_independent_rv_spaces(self):
        s, b0 = self.emu.json("GET", "/api/v1/configmaps", cluster="b")
        self.emu.json("POST", "/api/v1/namespaces/default/configmaps", cm("only-a"))
        s, b1 = self.emu.json("GET", "/api/v1/configmaps", cluster="b")
        self.assertEqual(b0["metadata"]["resourceVersion"], b1["metadata"]["resourceVersion"])
        self.assertEqual(self.emu.json("GET", "/api/v1/namespaces/default/configmaps/only-a", cluster="b")[0], 404)


if __name__ == "__main__":
    if not EMULATOR:
        sys.exit("usage: wire_test.py <path to kube-emulator>")
    unittest.main(verbosity=2)
