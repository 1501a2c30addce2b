#!/usr/bin/python3
"""Debian's python3-kubernetes client against kube-emulator.

A second real client nobody here wrote: it loads the emulator's kubeconfig
(TLS with the generated CA, bearer token), lists with pagination, and keeps a
watch going across a 410 the way its users do (relist, then watch from the
new resourceVersion). Run with /usr/bin/python3, where the package lives.

usage: python_client_test.py <path to kube-emulator>
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

EMULATOR = os.environ.get("KUBE_EMULATOR") or (sys.argv.pop(1) if len(sys.argv) > 1 else None)


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kube-emulator-py-")
        cls.proc = subprocess.Popen([EMULATOR, "--clusters", "py", "--dir", cls.dir],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        state = os.path.join(cls.dir, "emulator.json")
        deadline = time.time() + 20
        while not os.path.exists(state):
            if cls.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("kube-emulator did not start: " + cls.proc.stdout.read())
            time.sleep(0.05)
        with open(state) as f:
            cls.state = json.load(f)
        cls.api_client = config.new_client_from_config(config_file=os.path.join(cls.dir, "py.kubeconfig"))
        cls.v1 = client.CoreV1Api(cls.api_client)
        cls.apps = client.AppsV1Api(cls.api_client)

    @classmethod
    def tearDownClass(cls):
        cls.api_client.close()
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=20)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def fault(self, what, **params):
        q = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.state['control']}/clusters/py/faults/{what}" + ("?" + q if q else "")
        urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"")).read()

    def configmap(self, name, ns):
        return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, namespace=ns), data={"k": name})

    def test_list_paginates_and_reads_typed_objects(self):
        ns = "pylist"
        self.v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        for i in range(7):
            self.v1.create_namespaced_config_map(ns, self.configmap(f"cm{i}", ns))
        names, token = [], None
        while True:
            page = self.v1.list_namespaced_config_map(ns, limit=3, _continue=token)
            names += [c.metadata.name for c in page.items]
            token = page.metadata._continue
            if not token:
                break
        self.assertEqual(names, [f"cm{i}" for i in range(7)])
        self.assertEqual(self.v1.read_namespaced_config_map("cm3", ns).data, {"k": "cm3"})
        with self.assertRaises(ApiException) as e:
            self.v1.read_namespaced_config_map("nope", ns)
        self.assertEqual(e.exception.status, 404)
        self.assertEqual(json.loads(e.exception.body)["message"], 'configmaps "nope" not found')

    def test_deployment_create_and_read_back(self):
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "py-web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py-web"}},
                         "template": {"metadata": {"labels": {"app": "py-web"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
        made = self.apps.create_namespaced_deployment("default", body)
        self.assertEqual(made.metadata.generation, 1)
        self.assertEqual(self.apps.read_namespaced_deployment("py-web", "default").spec.replicas, 2)

    def test_watch_survives_a_410_by_relisting(self):
        ns = "pywatch"
        self.v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        self.v1.create_namespaced_config_map(ns, self.configmap("before", ns))
        listed = self.v1.list_namespaced_config_map(ns)
        rv = listed.metadata.resource_version
        seen = [item.metadata.name for item in listed.items]
        relists = 0

        def writer():
            time.sleep(0.5)
            self.v1.create_namespaced_config_map(ns, self.configmap("first", ns))
            time.sleep(0.5)
            self.fault("compact")      # the next resume from an old RV gets 410
            self.fault("drop-watches")  # ... and the watch has to resume now
            time.sleep(0.5)
            self.v1.create_namespaced_config_map(ns, self.configmap("second", ns))

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.time() + 30
        w = watch.Watch()
        while "second" not in seen and time.time() < deadline:
            try:
                for event in w.stream(self.v1.list_namespaced_config_map, ns, resource_version=rv,
                                      timeout_seconds=10, allow_watch_bookmarks=True):
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    if event["type"] == "ADDED":
                        seen.append(obj.metadata.name)
                    if "second" in seen:
                        w.stop()
                        break
            except ApiException as e:
                # The client retries a 410 once itself, then gives it to us.
                self.assertEqual(e.status, 410)
                relists += 1
                listed = self.v1.list_namespaced_config_map(ns)
                rv = listed.metadata.resource_version
                for item in listed.items:
                    if item.metadata.name not in seen:
                        seen.append(item.metadata.name)
        t.join()
        self.assertEqual(relists, 1)
        self.assertEqual(seen, ["before", "first", "second"])


if __name__ == "__main__":
    if not EMULATOR:
        sys.exit("usage: python_client_test.py <path to kube-emulator>")
    unittest.main(verbosity=2)
