"""Checks deploy/: every YAML parses, the compose file and the Kubernetes base say what the
services need (images, probes, shared inbox, writer discovery, resources, Prometheus scraping),
every flag they pass exists in the built binaries, and the Dockerfile's runtime stage installs
every shared library the binaries link. Runs `promtool check config` on the compose Prometheus
configuration when promtool is installed. Runs `docker compose config` / `docker-compose config` and `kubectl kustomize`
when those tools are installed, and says so when they are not.

Run by ctest (tests/deploy/CMakeLists.txt) as one ctest entry per TestCase class, with
ECOMSTREAM_SOURCE_DIR and ECOMSTREAM_BIN_DIR set.
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

import yaml

SOURCE_DIR = os.environ.get("ECOMSTREAM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("ECOMSTREAM_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
COMPOSE_FILE = os.path.join(DEPLOY, "compose", "docker-compose.yml")
K8S_DIR = os.path.join(DEPLOY, "k8s")
DOCKERFILE = os.path.join(DEPLOY, "docker", "Dockerfile")
PROMETHEUS_CONFIG = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
SERVICES = ("generator", "processor", "writer")


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def flag_values(argv):
    """{'flag': 'value' or True} for every --flag[=value] in a command line."""
    flags = {}
    for arg in argv:
        m = re.fullmatch(r"--([a-z0-9_]+)(?:=(.*))?", str(arg))
        if m:
            flags[m.group(1)] = m.group(2) if m.group(2) is not None else True
    return flags


_known_flags = {}


def known_flags(binary):
    """Flag names the built binary accepts, from its --helpfull text."""
    if binary not in _known_flags:
        path = os.path.join(BIN_DIR, binary)
        if not os.access(path, os.X_OK):
            raise AssertionError(f"{path} is not built: deploy/ passes it flags that must exist")
        out = subprocess.run([path, "--helpfull"], capture_output=True, text=True, timeout=30)
        text = out.stdout + out.stderr
        _known_flags[binary] = set(re.findall(r"^\s*--([a-z0-9_]+) ", text, re.M))
        if not _known_flags[binary]:
            raise AssertionError(f"{binary} --helpfull listed no flags:\n{text[:2000]}")
    return _known_flags[binary]


def port_of(address):
    return int(str(address).rsplit(":", 1)[1])


class YamlTest(unittest.TestCase):
    def test_every_yaml_file_under_deploy_parses(self):
        found = 0
        for root, _, files in os.walk(DEPLOY):
            for name in files:
                if name.endswith((".yml", ".yaml")):
                    docs = load_all(os.path.join(root, name))
                    self.assertTrue(docs, f"{name} holds no YAML document")
                    found += 1
        self.assertGreaterEqual(found, 8, "expected the compose file and the Kubernetes base")


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.doc,) = load_all(COMPOSE_FILE)
        cls.services = cls.doc["services"]

    def command(self, name):
        command = self.services[name]["command"]
        self.assertIsInstance(command, list, f"{name}: command must be an exec-form list")
        self.assertEqual(command[0], f"ecomstream-{name}")
        return flag_values(command)

    def test_services_images_and_shared_image_build(self):
        self.assertEqual(set(self.services), {"postgres", "writer", "processor", "generator", "prometheus", "jaeger"})
        self.assertEqual(self.services["postgres"]["image"], "postgres:15")
        for name in SERVICES:
            service = self.services[name]
            self.assertIn("ecomstream", service["image"])
            self.assertEqual(service["build"]["dockerfile"], "deploy/docker/Dockerfile")
            self.assertEqual(service["build"]["context"], "../..")
        self.assertEqual(self.services["jaeger"]["profiles"], ["tracing"])
        self.assertEqual(self.services["prometheus"]["profiles"], ["monitoring"])
        self.assertTrue(self.services["prometheus"]["image"].startswith("prom/prometheus:"))

    def test_prometheus_mounts_its_configuration_and_the_alerting_rules(self):
        prometheus = self.services["prometheus"]
        mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
        self.assertEqual(mounts["../prometheus"], "/etc/prometheus")
        self.assertIn("--config.file=/etc/prometheus/prometheus.yml", prometheus["command"])
        (config,) = load_all(PROMETHEUS_CONFIG)
        self.assertEqual(config["rule_files"], ["/etc/prometheus/rules/*.yml"])

    def test_drain_fits_in_the_stop_grace_period(self):
        def seconds(text):
            m = re.fullmatch(r"(\d+)s", str(text))
            self.assertIsNotNone(m, text)
            return int(m.group(1))
        grace = {name: seconds(self.services[name]["stop_grace_period"]) for name in SERVICES}
        drain = seconds(flag_values(self.services["processor"]["command"]).get("drain_timeout", "30s"))
        self.assertGreater(grace["processor"], drain, "the processor is killed before its drain times out")

    def test_healthchecks_probe_the_port_each_service_serves(self):
        listen = {
            "writer": port_of(self.command("writer")["listen_address"]),
            "processor": port_of(self.command("processor")["metrics_address"]),
            "generator": port_of(self.command("generator")["metrics_address"]),
        }
        for name in SERVICES:
            test = self.services[name]["healthcheck"]["test"]
            self.assertEqual(test[:2], ["CMD", f"ecomstream-{name}"])
            probe = flag_values(test[2:])
            self.assertIn("health_check", probe, f"{name} healthcheck must use --health_check")
            self.assertEqual(port_of(probe["health_check"]), listen[name], name)
        pg_test = self.services["postgres"]["healthcheck"]["test"]
        self.assertIn("pg_isready", pg_test)
        # Over TCP (what the writer uses), not the Unix socket the image's init server listens on.
        self.assertEqual(pg_test[pg_test.index("-h") + 1], "127.0.0.1")

    def test_start_order_waits_for_health(self):
        expect = {"writer": "postgres", "processor": "writer", "generator": "processor"}
        for name, upstream in expect.items():
            self.assertEqual(self.services[name]["depends_on"][upstream]["condition"], "service_healthy")

    def test_writer_migrates_and_reaches_postgres_with_a_file_secret(self):
        flags = self.command("writer")
        self.assertIs(flags.get("migrate"), True)
        env = self.services["writer"]["environment"]
        self.assertIn("host=postgres", env["ECOMSTREAM_PG_DSN"])
        self.assertNotIn("password", env["ECOMSTREAM_PG_DSN"])
        self.assertEqual(env["PGPASSWORD_FILE"], "/run/secrets/pg_password")
        self.assertEqual(self.doc["secrets"]["pg_password"]["file"], "./secrets/pg_password")
        self.assertEqual(self.services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"], "/run/secrets/pg_password")

    def test_generator_and_processor_share_the_inbox_volume(self):
        gen, proc = self.command("generator"), self.command("processor")
        self.assertEqual(gen["output_dir"], proc["input_dir"])
        mounts = {name: dict(v.split(":")[::-1] for v in self.services[name]["volumes"]) for name in ("generator", "processor")}
        self.assertEqual(mounts["generator"], mounts["processor"])
        (mount_point, volume), = mounts["processor"].items()
        self.assertIn(volume, self.doc["volumes"])
        for path in (proc["input_dir"], proc["archive_dir"], proc["quarantine_dir"]):
            self.assertTrue(path.startswith(mount_point + "/"), f"{path} is not on the shared volume")
        self.assertEqual(proc["writer_address"], f"writer:{port_of(self.command('writer')['listen_address'])}")

    def test_every_service_exports_traces_to_the_optional_collector(self):
        for name in SERVICES:
            env = self.services[name]["environment"]
            self.assertIn("OTEL_EXPORTER_OTLP_ENDPOINT", env)
            self.assertEqual(env["OTEL_SERVICE_NAME"], f"ecomstream-{name}")

    def test_every_flag_exists_in_the_binary(self):
        for name in SERVICES:
            binary = f"ecomstream-{name}"
            used = set(self.command(name)) | set(flag_values(self.services[name]["healthcheck"]["test"]))
            for key in self.services[name].get("environment", {}):
                if key.startswith("ECOMSTREAM_"):
                    used.add(key[len("ECOMSTREAM_"):].lower())
            missing = used - known_flags(binary)
            self.assertFalse(missing, f"{binary} has no flag(s) {sorted(missing)}")

    def test_compose_cli_accepts_the_file(self):
        if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            argv = ["docker", "compose"]
        elif shutil.which("docker-compose"):
            argv = ["docker-compose"]
        else:
            print("NOT RUN: neither `docker compose` nor `docker-compose` is installed", file=sys.stderr)
            return
        out = subprocess.run(argv + ["-f", COMPOSE_FILE, "config", "-q"], capture_output=True, text=True,
                             cwd=os.path.dirname(COMPOSE_FILE), timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        print(f"{' '.join(argv)} config: ok", file=sys.stderr)


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (kustomization,) = load_all(os.path.join(K8S_DIR, "kustomization.yaml"))
        cls.kustomization = kustomization
        cls.objects = []
        for resource in kustomization["resources"]:
            cls.objects += load_all(os.path.join(K8S_DIR, resource))
        cls.by_kind_name = {(o["kind"], o["metadata"]["name"]): o for o in cls.objects}

    def workload(self, kind, name):
        self.assertIn((kind, name), self.by_kind_name)
        return self.by_kind_name[(kind, name)]

    def containers(self):
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    yield obj, container

    def test_base_has_every_piece(self):
        self.assertEqual(self.kustomization["namespace"], "ecomstream")
        expected = {("Namespace", "ecomstream"), ("ConfigMap", "ecomstream-config"), ("ConfigMap", "ecomstream-rules"),
                    ("Service", "postgres"),
                    ("StatefulSet", "postgres"), ("PersistentVolumeClaim", "ecomstream-inbox"),
                    ("Service", "ecomstream-writer"), ("Deployment", "ecomstream-writer"),
                    ("Deployment", "ecomstream-processor"), ("Deployment", "ecomstream-generator")}
        self.assertEqual(set(self.by_kind_name), expected)

    def test_every_container_has_image_probes_and_resources(self):
        count = 0
        for obj, c in self.containers():
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            self.assertTrue(c.get("image"), where)
            self.assertIn("readinessProbe", c, where)
            self.assertIn("livenessProbe", c, where)
            for key in ("requests", "limits"):
                self.assertIn("cpu", c["resources"][key], where)
                self.assertIn("memory", c["resources"][key], where)
            port_names = {p["name"] for p in c.get("ports", [])}
            port_numbers = {p["containerPort"] for p in c.get("ports", [])}
            for probe in (c["readinessProbe"], c["livenessProbe"]):
                port = (probe.get("httpGet") or probe.get("grpc") or {}).get("port")
                if port is not None:
                    self.assertTrue(port in port_names or port in port_numbers, f"{where}: probe port {port}")
            count += 1
        self.assertEqual(count, 4)

    def test_every_service_pod_is_scraped_by_prometheus_on_its_metrics_port(self):
        for name in SERVICES:
            template = self.workload("Deployment", f"ecomstream-{name}")["spec"]["template"]
            annotations = template["metadata"]["annotations"]
            self.assertEqual(annotations["prometheus.io/scrape"], "true", name)
            self.assertEqual(annotations["prometheus.io/path"], "/metrics", name)
            container = template["spec"]["containers"][0]
            metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
            self.assertEqual(int(annotations["prometheus.io/port"]), metrics_port, name)
            self.assertEqual(port_of(flag_values(container["args"])["metrics_address"]), metrics_port, name)

    def test_selectors_match_pod_labels(self):
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                labels = obj["spec"]["template"]["metadata"]["labels"]
                for key, value in obj["spec"]["selector"]["matchLabels"].items():
                    self.assertEqual(labels.get(key), value, obj["metadata"]["name"])

    def test_writer_is_a_headless_service_reached_with_dns_round_robin(self):
        service = self.workload("Service", "ecomstream-writer")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        deployment = self.workload("Deployment", "ecomstream-writer")
        self.assertEqual(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"])
        self.assertGreaterEqual(deployment["spec"]["replicas"], 2)
        grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
        address = self.workload("ConfigMap", "ecomstream-config")["data"]["ECOMSTREAM_WRITER_ADDRESS"]
        self.assertEqual(address, f"dns:///ecomstream-writer:{grpc_port}")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["readinessProbe"]["grpc"]["port"], grpc_port)
        self.assertEqual(port_of(flag_values(container["args"])["listen_address"]), grpc_port)
        self.assertIs(flag_values(container["args"]).get("migrate"), True)

    def test_processors_and_generator_share_one_read_write_many_inbox(self):
        pvc = self.workload("PersistentVolumeClaim", "ecomstream-inbox")
        self.assertIn("ReadWriteMany", pvc["spec"]["accessModes"])
        claims = {}
        for name in ("ecomstream-processor", "ecomstream-generator"):
            spec = self.workload("Deployment", name)["spec"]["template"]["spec"]
            claims[name] = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
        self.assertEqual(claims["ecomstream-processor"], {"ecomstream-inbox"})
        self.assertEqual(claims["ecomstream-generator"], {"ecomstream-inbox"})
        gen = flag_values(self.workload("Deployment", "ecomstream-generator")["spec"]["template"]["spec"]["containers"][0]["args"])
        proc = flag_values(self.workload("Deployment", "ecomstream-processor")["spec"]["template"]["spec"]["containers"][0]["args"])
        self.assertEqual(gen["output_dir"], proc["input_dir"])

    def test_processor_rules_come_from_the_rules_configmap_equal_to_the_example(self):
        data = self.workload("ConfigMap", "ecomstream-rules")["data"]["rules.json"]
        with open(os.path.join(DEPLOY, "rules", "rules.json"), encoding="utf-8") as f:
            self.assertEqual(data, f.read())
        spec = self.workload("Deployment", "ecomstream-processor")["spec"]["template"]["spec"]
        volume = next(v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "ecomstream-rules")
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
        rules_file = flag_values(spec["containers"][0]["args"])["rules_file"]
        self.assertEqual(rules_file, mount["mountPath"] + "/rules.json")

    def test_database_password_comes_from_a_secret(self):
        for name in ("postgres",):
            spec = self.workload("StatefulSet", name)["spec"]["template"]["spec"]
            self.assertIn("ecomstream-postgres", [v.get("secret", {}).get("secretName") for v in spec["volumes"]])
        spec = self.workload("Deployment", "ecomstream-writer")["spec"]["template"]["spec"]
        self.assertIn("ecomstream-postgres", [v.get("secret", {}).get("secretName") for v in spec["volumes"]])
        self.assertNotIn("password", self.workload("ConfigMap", "ecomstream-config")["data"]["ECOMSTREAM_PG_DSN"])

    def test_every_flag_exists_in_the_binary(self):
        for obj, c in self.containers():
            if c["name"] == "postgres":
                continue
            binary = c["args"][0]
            self.assertIn(binary, [f"ecomstream-{s}" for s in SERVICES])
            used = set(flag_values(c["args"]))
            for env in c.get("env", []):
                if env["name"].startswith("ECOMSTREAM_"):
                    used.add(env["name"][len("ECOMSTREAM_"):].lower())
            missing = used - known_flags(binary)
            self.assertFalse(missing, f"{binary} has no flag(s) {sorted(missing)}")

    def test_kustomize_renders_the_base(self):
        if not shutil.which("kubectl"):
            print("NOT RUN: kubectl is not installed (kubectl kustomize)", file=sys.stderr)
            return
        out = subprocess.run(["kubectl", "kustomize", K8S_DIR], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
        self.assertEqual(len(rendered), len(self.objects))
        for obj in rendered:
            if obj["kind"] != "Namespace":
                self.assertEqual(obj["metadata"]["namespace"], "ecomstream", obj["metadata"]["name"])
            self.assertEqual(obj["metadata"]["labels"]["app.kubernetes.io/part-of"], "ecomstream")
        images = {c["image"] for d in rendered if d["kind"] in ("Deployment", "StatefulSet")
                  for c in d["spec"]["template"]["spec"]["containers"]}
        self.assertEqual(images, {"ecomstream:latest", "postgres:15"})
        print("kubectl kustomize: ok", file=sys.stderr)


class PrometheusTest(unittest.TestCase):
    """deploy/prometheus/prometheus.yml: the compose stack's scrape configuration."""

    @classmethod
    def setUpClass(cls):
        (cls.config,) = load_all(PROMETHEUS_CONFIG)
        (compose,) = load_all(COMPOSE_FILE)
        cls.compose_services = compose["services"]

    def test_scrapes_each_service_at_its_metrics_address(self):
        targets = {}
        for job in self.config["scrape_configs"]:
            self.assertEqual(job.get("metrics_path", "/metrics"), "/metrics")
            targets[job["job_name"]] = [t for sc in job["static_configs"] for t in sc["targets"]]
        expected = {}
        for name in SERVICES:
            port = port_of(flag_values(self.compose_services[name]["command"])["metrics_address"])
            expected[f"ecomstream-{name}"] = [f"{name}:{port}"]
        self.assertEqual(targets, expected)

    def test_promtool_accepts_the_configuration(self):
        if not shutil.which("promtool"):
            print("NOT RUN: promtool is not installed (Debian package prometheus)", file=sys.stderr)
            return
        out = subprocess.run(["promtool", "check", "config", "--syntax-only", PROMETHEUS_CONFIG],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOCKERFILE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", cls.text, re.M | re.I)

    def runtime_stage(self):
        return self.text[self.text.rfind("\nFROM "):]

    def test_multi_stage_on_debian_bookworm_running_as_non_root(self):
        self.assertEqual(self.stages, [("debian:bookworm", "build"), ("scratch", "binaries"),
                                       ("debian:bookworm-slim", "runtime")])
        runtime = self.runtime_stage()
        user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
        self.assertEqual(len(user), 1)
        self.assertNotIn(user[0].split(":")[0], ("0", "root"))
        for name in SERVICES:
            self.assertIn(f"ecomstream-{name}", re.search(r"--target ([^\n\\]+)", self.text).group(1))
            # From the `binaries` stage, which a build can replace with prebuilt binaries
            # (--build-context binaries=DIR): the runtime stage never names the compile stage.
            self.assertIn(f"/ecomstream-{name}", re.search(r"^COPY --from=binaries (.+)$", runtime, re.M).group(1))
        self.assertNotIn("--from=build", runtime)

    def test_runtime_stage_installs_every_library_the_binaries_link(self):
        if not shutil.which("dpkg") or not shutil.which("readelf"):
            print("NOT RUN: needs dpkg and readelf", file=sys.stderr)
            return
        m = re.search(r"apt-get install[^\n]*\\\n((?:.*\\\n)+)", self.runtime_stage())
        installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", m.group(1).replace("&&", " ")))
        allowed = set(installed) | {"libc6", "libstdc++6", "libgcc-s1"}
        for pkg in installed:  # one level of dependencies of what the stage installs
            out = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", pkg], capture_output=True, text=True)
            allowed |= set(re.findall(r"(?:^|, |\| )([a-z0-9][a-z0-9.+-]+)", out.stdout))
        needed = {}
        for name in SERVICES:
            path = os.path.join(BIN_DIR, f"ecomstream-{name}")
            self.assertTrue(os.access(path, os.X_OK), f"{path} is not built")
            needed[name] = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                                      subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout)
            self.assertTrue(needed[name])
        # One dpkg -S for every library (each call reads the whole package database: seconds apiece).
        libs = sorted({lib for libs in needed.values() for lib in libs})
        owners = {lib: set() for lib in libs}
        out = subprocess.run(["dpkg", "-S"] + [f"*/{lib}" for lib in libs], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if ": " in line:
                packages, path = line.split(": ", 1)
                if os.path.basename(path) in owners:
                    owners[os.path.basename(path)] |= {p.strip().split(":")[0] for p in packages.split(",")}
        for name, libs_of_service in needed.items():
            for lib in libs_of_service:
                packages = owners[lib]
                self.assertTrue(packages & allowed, f"{name} links {lib} from {packages}, not in the runtime stage")


if __name__ == "__main__":
    unittest.main()
