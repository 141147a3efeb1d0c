"""The shipped Prometheus rules and Grafana dashboards against the metric catalogue and the deploy files."""

from __future__ import annotations

import pytest
import yaml
from prometheus_client import CollectorRegistry

from runtime.metrics import ConsumerMetrics, ControlApiMetrics, ProcessorMetrics, ProducerMetrics, SinkMetrics
from runtime.settings import ApiSettings, OpsSettings
from tests.promql import (
    CONFIG_FILE,
    DEPLOY,
    dashboard_expressions,
    load_dashboards,
    load_rules,
    metric_names,
    rule_expressions,
    selectors,
    shipped_expressions,
    substitute_grafana_variables,
    with_bool,
)

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}
PROMETHEUS_OWN = {"up", "ALERTS"}


def catalogue_series() -> set[str]:
    """Every series name the metric groups of runtime.metrics can export."""
    registry = CollectorRegistry()
    processor = ProcessorMetrics(registry)
    groups = [ProducerMetrics(registry), processor, SinkMetrics(registry), ConsumerMetrics(registry)]
    groups.append(ControlApiMetrics(registry))
    families = [*registry.collect(), *processor.dead_letters.describe()]
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def test_selectors_skip_functions_aggregations_and_label_lists():
    expr = (
        'histogram_quantile(0.95, sum by (source, le) (rate(a_bucket{kind="odds", x!="}"}[5m] offset 1h)))'
        " / on (source) group_left (kind) max without (instance) (b) and ignoring (le) c:rec:max > 0"
    )
    assert selectors(expr) == ['a_bucket{kind="odds", x!="}"}', "b", "c:rec:max"]
    assert metric_names('sum(rate(x_total[1m])) by (job) or vector(0) unless {__name__=~"y.*"}') == {"x_total"}
    assert metric_names("time() - max(z_seconds)") == {"z_seconds"}


def test_with_bool_keeps_every_series_and_leaves_matchers_alone():
    assert with_bool('a{b!="c"} > 0 and on (d) e == 1') == 'a{b!="c"} > bool 0 and on (d) e == bool 1'
    assert with_bool("a > bool 0") == "a > bool 0"
    assert with_bool("sum by (x) (a)") == "sum by (x) (a)"


def test_dashboard_targets_are_found_in_rows_and_intervals_substituted():
    dashboard = {
        "uid": "d",
        "panels": [
            {"title": "p", "targets": [{"refId": "A", "expr": "rate(a_total[$__rate_interval])"}]},
            {"type": "row", "panels": [{"title": "q", "targets": [{"refId": "B", "expr": "b[${__range}]"}]}]},
            {"title": "text", "type": "text"},
        ],
    }
    found = dashboard_expressions(dashboard)
    assert [(e.name, e.expr) for e in found] == [("d/p/A", "rate(a_total[1m])"), ("d/q/B", "b[1h]")]


def test_a_dashboard_variable_without_a_value_is_an_error():
    with pytest.raises(ValueError, match=r"\$job"):
        substitute_grafana_variables('up{job="$job"}')


def test_every_metric_the_rules_and_dashboards_use_is_exported_or_recorded():
    expressions = shipped_expressions()
    recorded = {e.name for e in expressions if e.kind == "record"}
    known = catalogue_series() | recorded | PROMETHEUS_OWN
    unknown = {(e.origin, name) for e in expressions for name in metric_names(e.expr) if name not in known}
    assert not unknown
    assert len([e for e in expressions if e.kind == "panel"]) >= 20


def test_every_alert_has_a_duration_a_severity_and_both_annotations():
    rules = load_rules()
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert {a["alert"] for a in alerts} >= {
        "RacelabPollSuccessRateLow",
        "RacelabOddsStale",
        "RacelabDeadLettersGrowing",
        "RacelabConsumerLagGrowing",
        "RacelabConsumerStalled",
        "RacelabWorkerDown",
        "RacelabSinkDatabaseErrors",
    }
    for alert in alerts:
        assert "for" in alert, alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]
    assert len(rule_expressions(rules)) == sum(len(g["rules"]) for g in rules["groups"])


def test_dashboards_query_the_provisioned_datasource():
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for dashboard in load_dashboards():
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]


def test_scrape_jobs_use_the_ops_and_api_ports_and_load_the_rules():
    """Each role's job finds the replicas of the compose service of that name by DNS, on the role's default port
    (tests/unit/test_compose.py checks that the compose services run those roles with those ports)."""
    config = yaml.safe_load(CONFIG_FILE.read_text())
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["localhost:9090"]}]
    discovered = {name: job["dns_sd_configs"] for name, job in jobs.items() if name != "prometheus"}
    assert all("static_configs" not in jobs[name] for name in discovered)
    ports = {name: {(tuple(c["names"]), c["type"], c["port"]) for c in configs} for name, configs in discovered.items()}
    ops = OpsSettings()
    assert ports == {
        "producers": {(("producers",), "A", ops.producers_port)},
        "processors": {(("processors",), "A", ops.processors_port)},
        "sink": {(("sink",), "A", ops.sink_port)},
        "archiver": {(("archiver",), "A", ops.archiver_port)},
        "api": {(("api",), "A", ApiSettings().port)},
    }
    assert (ops.producers_port, ops.processors_port, ops.sink_port, ops.archiver_port) == (9101, 9102, 9103, 9104)


def test_compose_mounts_the_grafana_provisioning_and_the_dashboards():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/racelab.yml").read_text())["providers"]
    assert mounts["./grafana/dashboards"] == providers[0]["options"]["path"]
    assert all((DEPLOY / source).is_dir() for source in mounts)


def test_compose_grafana_queries_the_prometheus_service_where_it_listens():
    """Grafana, Prometheus and the RaceLab containers share the compose project's network: Grafana asks the
    Prometheus service by name on the port Prometheus listens on (every interface of its container)."""
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    assert "network_mode" not in services["prometheus"] and "network_mode" not in services["grafana"]
    listen = next(a for a in services["prometheus"]["command"] if a.startswith("--web.listen-address="))
    assert listen == "--web.listen-address=0.0.0.0:9090"
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]  # and on the host's loopback only
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


def test_labelled_counters_start_with_every_series_at_zero():
    """increase() over a window that starts at the process's start sees the first failure only if its series was
    already exported at 0 (the DLQ and collection-failure alerts rely on it)."""
    registry = CollectorRegistry()
    ProducerMetrics(registry)
    ProcessorMetrics(registry)
    SinkMetrics(registry)
    value = registry.get_sample_value
    for source in ("kra", "kspo"):
        for kind in ("schedules", "entries", "odds", "results"):
            assert value("racelab_collection_failures_total", {"source": source, "kind": kind}) == 0
            assert value("racelab_polls_total", {"source": source, "kind": kind, "outcome": "failed"}) == 0
    for kind in ("schedules", "entries", "odds", "results"):
        for stage in ("decode", "validate", "normalize", "sink"):
            assert value("racelab_dlq_records_total", {"kind": kind, "stage": stage}) == 0
    for table in ("races", "entries", "results", "odds_snapshots"):
        assert value("racelab_sink_rows_written_total", {"table": table}) == 0
    assert value("racelab_sink_db_errors_total", {"kind": "unavailable"}) == 0


def test_freshness_is_seeded_from_before_the_start():
    import time

    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry)
    metrics.seed({("kra", "odds"): time.time() - 600})
    freshness = registry.get_sample_value("racelab_data_freshness_seconds", {"source": "kra", "kind": "odds"})
    assert 599 <= freshness < 660
    assert registry.get_sample_value("racelab_data_freshness_seconds", {"source": "kspo", "kind": "odds"}) is None
