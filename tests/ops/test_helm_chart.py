"""helm/coursewright: lint and render it for every values file with Helm's own Go SDK (helm-python-sdk, no
helm binary), validate every rendered object against the Kubernetes schemas (kubernetes-validate, strict:
an unknown field fails), and check what a deploy depends on."""

import re

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

CHART = ROOT / "helm" / "coursewright"
VALUES_FILES = [None, "values-staging.yaml", "values-prod.yaml"]
KUBE_VERSION = kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version())  # newest shipped
# What a secret's value looks like, wherever it might be written: keys or tokens of our providers, a
# database URL with a password, a PEM block.
SECRET_LITERALS = re.compile(r"sk_(live|test)_|rk_(live|test)_|whsec_|sk-[A-Za-z0-9]{8}|://[^/\s:@]+:[^/\s@]+@"
                             r"|-----BEGIN")
SECRET_NAMES = {"DATABASE_URL", "QUEUE_URL", "SECRET_KEY", "METRICS_TOKEN", "OPENAI_API_KEY", "STRIPE_SECRET_KEY",
                "STRIPE_WEBHOOK_SECRET"}


def values_of(values_file):
    return helm.values_from_yaml((CHART / values_file).read_text()) if values_file else {}


def render(values_file, **overrides):
    values = {**values_of(values_file), **overrides}
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="cw", namespace="courses", is_install=True)
    return [doc for name, text in manifests.items() if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind, component):
    [found] = [o for o in by_kind(objects, kind) if o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return found


def pod_spec_labels(workload):
    return workload["spec"]["selector"]["matchLabels"]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


@pytest.fixture(scope="module", params=VALUES_FILES, ids=lambda f: f or "values.yaml")
def rendered(request):
    return request.param, render(request.param)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_it_lints_without_errors_or_warnings(values_file):
    report = helm.lint(CHART, values_of(values_file), strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    # Severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_it_renders_objects_that_validate_against_kubernetes_schemas(rendered):
    _, objects = rendered
    kinds = sorted(o["kind"] for o in objects)
    for kind in ("ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "NetworkPolicy",
                 "PodDisruptionBudget", "Service", "ServiceAccount"):
        assert kind in kinds
    for obj in objects:
        assert kubernetes_validate.validate(obj, KUBE_VERSION, strict=True) == KUBE_VERSION


def test_it_rejects_a_manifest_with_an_unknown_field():
    # The validator is strict: a misspelt field is an error, not something a cluster silently drops.
    web = one(render(None), "Deployment", "web")
    pod_spec(web)["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBE_VERSION, strict=True)


def test_it_probes_web_on_health_ready_and_live(rendered):
    _, objects = rendered
    [container] = pod_spec(one(objects, "Deployment", "web"))["containers"]
    assert container["args"] == ["serve", "--no-prepare"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"


def test_it_runs_the_worker_with_its_metrics_port_probed_and_scraped(rendered):
    _, objects = rendered
    worker = one(objects, "Deployment", "worker")
    [container] = pod_spec(worker)["containers"]
    assert container["args"] == ["worker"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9100"
    web_annotations = one(objects, "Deployment", "web")["spec"]["template"]["metadata"]["annotations"]
    assert (web_annotations["prometheus.io/port"], web_annotations["prometheus.io/path"]) == ("8000", "/metrics")
    # The worker binds its exporter to HOST, which must not be the loopback default inside a pod.
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert (config["HOST"], config["WORKER_METRICS_PORT"], config["WORKER_IN_PROCESS"]) == ("0.0.0.0", "9100", "false")


def test_it_sets_resources_on_every_container(rendered):
    _, objects = rendered
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        for container in pod_spec(workload)["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), workload["metadata"]["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), workload["metadata"]["name"]


def test_it_runs_every_pod_as_non_root_without_privileges(rendered):
    _, objects = rendered
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_it_migrates_in_a_pre_install_and_pre_upgrade_hook_that_needs_nothing_the_chart_creates(rendered):
    _, objects = rendered
    job = one(objects, "Job", "migration")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    spec = pod_spec(job)
    [container] = spec["containers"]
    assert container["args"] == ["migrate"]
    assert spec["restartPolicy"] == "Never"
    # On a first install the hook runs before the ConfigMap and ServiceAccount exist.
    assert "serviceAccountName" not in spec
    assert [list(source) for source in container["envFrom"]] == [["secretRef"]]
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert {e["name"]: e["value"] for e in container["env"]} == config


def test_it_autoscales_web_between_2_and_10_pods_at_70_percent_cpu(rendered):
    values_file, objects = rendered
    [hpa] = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(objects, "Deployment", "web")["metadata"]["name"]
    expected_max = 4 if values_file == "values-staging.yaml" else 10  # staging is the small copy
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, expected_max)
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    # The HPA owns the replica count; a fixed one would fight it on every upgrade.
    assert "replicas" not in one(objects, "Deployment", "web")["spec"]


def test_it_gives_web_and_worker_disruption_budgets_and_network_policies(rendered):
    _, objects = rendered
    for role in ("web", "worker"):
        selector = one(objects, "PodDisruptionBudget", role)["spec"]["selector"]["matchLabels"]
        assert selector == pod_spec_labels(one(objects, "Deployment", role))
    assert one(objects, "PodDisruptionBudget", "web")["spec"]["minAvailable"] == 1
    worker_policy = one(objects, "NetworkPolicy", "worker")
    assert [p["port"] for rule in worker_policy["spec"]["ingress"] for p in rule["ports"]] == ["metrics"]


def test_it_reads_secrets_only_from_the_named_secret(rendered):
    values_file, objects = rendered
    expected = {None: "cw-coursewright-env", "values-staging.yaml": "coursewright-staging",
                "values-prod.yaml": "coursewright-prod"}[values_file]
    assert by_kind(objects, "Secret") == []
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        for container in pod_spec(workload)["containers"]:
            assert {"secretRef": {"name": expected}} in container["envFrom"]
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert SECRET_NAMES.isdisjoint(config)


@pytest.mark.parametrize("values_file", ["values.yaml", "values-staging.yaml", "values-prod.yaml"])
def test_it_keeps_secret_values_out_of_values_files(values_file):
    text = (CHART / values_file).read_text()
    assert not SECRET_LITERALS.search(text)
    assert SECRET_NAMES.isdisjoint(yaml.safe_load(text).get("config", {}))


def test_it_keeps_secret_values_out_of_rendered_manifests(rendered):
    _, objects = rendered
    assert not SECRET_LITERALS.search(yaml.safe_dump_all(objects))


def test_it_catches_a_secret_literal_where_one_is_written():
    # The pattern used above does find what it looks for.
    leaked = render("values-prod.yaml", config={"PUBLIC_BASE_URL": "postgresql://app:hunter2@db:5432/app"})
    assert SECRET_LITERALS.search(yaml.safe_dump_all(leaked))


def test_it_routes_the_ingress_to_the_web_service():
    objects = render("values-prod.yaml")
    [ingress] = by_kind(objects, "Ingress")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "courses.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "cw-coursewright-web", "port": {"name": "http"}}
    assert by_kind(render(None), "Ingress") == []


def test_it_restarts_pods_when_the_config_changes():
    def checksum(objects):
        return one(objects, "Deployment", "web")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(render(None)) != checksum(render(None, config={"MAINTENANCE_MODE": "true"}))


def test_it_refuses_an_ingress_without_a_host():
    with pytest.raises(helm.HelmRenderError, match="ingress.host is required"):
        render(None, ingress={"enabled": True, "host": ""})
