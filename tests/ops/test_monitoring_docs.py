"""docs/monitoring.md and deploy/prometheus-rules.yaml against the code: every metric and every `alert:` log
line the code defines is documented, and every alert rule parses as PromQL and names only metrics we export.
The code is read as text, so a new metric or alert line without documentation fails here."""

import functools
import re
from pathlib import Path

import litestar
import promql_parser
import pytest
import yaml

from tests.conftest import ROOT

DOCS = ROOT / "docs" / "monitoring.md"
RULES = ROOT / "deploy" / "prometheus-rules.yaml"
SOURCES = [*(ROOT / "app").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every target


@functools.cache
def defined_metrics():
    """{name: type} of every metric our code registers, plus the HTTP metrics of Litestar's middleware under
    the prefix app/asgi.py gives it."""
    found = {}
    for path in SOURCES:
        for kind, name in re.findall(r"\b(Counter|Histogram|Gauge|Summary)\(\s*\"(\w+)\"", path.read_text()):
            found[name] = kind
    [prefix] = re.findall(r"PrometheusConfig\([^)]*prefix=\"(\w+)\"", (ROOT / "app" / "asgi.py").read_text(), re.S)
    middleware = Path(litestar.__file__).parent / "plugins" / "prometheus" / "middleware.py"
    for suffix in re.findall(r"f\"\{self\._config\.prefix\}_(\w+)\"", middleware.read_text()):
        found[f"{prefix}_{suffix}"] = "litestar"
    return found


def alert_lines():
    return {m for path in SOURCES for m in re.findall(r"\"(alert:\w+)\"", path.read_text())}


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def metrics_in(expr):
    names = []
    promql_parser.walk(promql_parser.parse(expr),
                       lambda node: names.append(node.name) if isinstance(node, promql_parser.VectorSelector) else None)
    return names


def series_of(metrics):
    """The series names Prometheus stores for our metrics (a histogram is stored as three)."""
    series = set(PROMETHEUS_OWN)
    for name, kind in metrics.items():
        series |= {name + s for s in HISTOGRAM_SERIES} if kind in ("Histogram", "Summary") else {name}
        if kind == "litestar" and name.endswith("_seconds"):
            series |= {name + s for s in HISTOGRAM_SERIES}
    return series


def test_it_finds_the_metrics_and_alert_lines_it_checks():
    # Guards the text scan itself: these exist in code today.
    metrics = defined_metrics()
    assert {"coursewright_jobs_total", "coursewright_requests_total", "coursewright_request_duration_seconds",
            "coursewright_billing_webhook_failures_total"} <= set(metrics)
    assert {"alert:job_failed", "alert:billing_webhook_failed", "alert:audit_write_failed"} <= alert_lines()


def test_it_documents_every_metric_the_code_defines():
    documented = set(re.findall(r"`(\w+)`", DOCS.read_text()))
    assert sorted(set(defined_metrics()) - documented) == []


def test_it_documents_every_alert_log_line_the_code_emits():
    documented = set(re.findall(r"`(alert:\w+)`", DOCS.read_text()))
    assert sorted(alert_lines() - documented) == []


def test_it_documents_every_rule_of_the_rule_file():
    documented = set(re.findall(r"`(Coursewright\w+)`", DOCS.read_text()))
    assert {rule["alert"] for rule in rules()} == documented


def test_it_writes_rules_in_prometheus_rule_file_shape():
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    alerts = [rule["alert"] for rule in rules()]
    assert len(alerts) == len(set(alerts)) >= 10
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["alert"]
        # Annotations are Go templates: an unbalanced action would fail when Prometheus loads the file.
        for text in rule["annotations"].values():
            assert text.count("{{") == text.count("}}"), rule["alert"]


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_it_parses_every_expression_and_names_only_metrics_we_export(rule):
    names = metrics_in(rule["expr"])
    assert names, "an alert that reads no metric"
    assert set(names) <= series_of(defined_metrics())


def test_it_rejects_an_expression_that_does_not_parse_or_names_an_unknown_metric():
    with pytest.raises(ValueError):
        metrics_in("sum(rate(coursewright_jobs_total[5m])")
    assert "coursewright_jobs_totl" not in series_of(defined_metrics())
    assert metrics_in('increase(coursewright_jobs_totl{outcome="failed"}[5m]) > 0') == ["coursewright_jobs_totl"]
