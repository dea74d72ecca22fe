"""The Grafana dashboard and provisioning: valid, wired to the provisioned data source, complete."""

from __future__ import annotations

import re

from tests.stack.files import DASHBOARD_PROVIDERS, DATASOURCES, dashboard, load_yaml

PROMETHEUS_UID = "prometheus"


def test_datasource_is_provisioned_with_a_fixed_uid() -> None:
    """Prometheus is the default data source, uid fixed, exemplars linked to the Jaeger source."""
    sources = {source["uid"]: source for source in load_yaml(DATASOURCES)["datasources"]}
    prometheus = sources[PROMETHEUS_UID]
    assert prometheus["type"] == "prometheus"
    assert prometheus["isDefault"] is True
    (link,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert link["datasourceUid"] in sources
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False


def test_every_panel_and_variable_uses_the_provisioned_uid() -> None:
    """No panel, query or variable refers to a data source by name or by another uid."""
    board = dashboard()
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == PROMETHEUS_UID, panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == PROMETHEUS_UID, variable["name"]


def test_dashboard_is_well_formed() -> None:
    """A recent schema, unique panel ids and query refIds, panels inside the 24-column grid."""
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert board["uid"] == "sqs-metrics-exporter"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]


def test_variables_for_type_and_instance_filter_the_queries() -> None:
    """$type, $instance and $value exist and allow all, $dimension picks one label, and every
    processor query honours $instance."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert set(variables) == {"type", "instance", "dimension", "value"}
    for name in ("type", "instance", "value"):
        assert variables[name]["includeAll"] is True
        assert variables[name]["multi"] is True
    assert variables["dimension"]["multi"] is False
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    assert any('type=~"$type"' in expr for expr in exprs)
    # Per-replica counters and histograms follow the instance selection (queue gauges are global).
    replica_metric = r"exporter_(events|messages|batch|event_lag|dependency|ready)"
    for expr in exprs:
        per_replica = re.search(replica_metric, expr)
        if per_replica and "exporter_queue_messages" not in expr:
            assert 'instance=~"$instance"' in expr, expr


def test_panels_cover_what_an_operator_needs() -> None:
    """Every view the issue asks for is on the dashboard, each backed by the right metric."""
    panels = {p["title"]: p for p in dashboard()["panels"] if p["type"] != "row"}
    wanted = {
        "Events per second by type": "exporter_events_processed_total",
        "Total events by type": "max by (type) (sum by (type, instance) "
        "(exporter_stats_events_total",
        "Sum of values by type": "max by (type) (sum by (type, instance) (exporter_stats_value_sum",
        "Mean value by type": "exporter_stats_value_sum",
        "Invalid events by reason": "exporter_events_invalid_total",
        "Duplicates suppressed": "exporter_events_duplicate_total",
        "Main queue depth": 'exporter_queue_messages{queue="main"}',
        "Dead-letter queue depth": 'exporter_queue_messages{queue="dead_letter"}',
        "Event lag percentiles": "exporter_event_lag_seconds_bucket",
        "Batch stage latency percentiles": "exporter_batch_stage_duration_seconds_bucket",
        "Processor replicas up": 'up{job="processor"}',
        "Dependency errors": "exporter_dependency_errors_total",
        "Events per second by $dimension": "sum by (instance, $dimension) (rate(exporter_stats_",
        "Total events by $dimension": '$dimension=~"$value"',
        "Value percentiles, fleet-wide": "histogram_quantile(0.9, sum by (le, type) (rate("
        "exporter_event_value_bucket",
        "Value distribution": "sum by (le) (rate(exporter_event_value_bucket",
    }
    for title, metric in wanted.items():
        assert title in panels, title
        assert any(metric in t["expr"] for t in panels[title]["targets"]), title


def test_exemplars_are_on_for_counters_and_histograms() -> None:
    """Queries over rates of processor counters or histogram buckets ask for exemplars."""
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            if ("_bucket" in expr or "_total" in expr) and "rate(" in expr:
                assert target.get("exemplar") is True, (panel["title"], expr)


def test_the_dimension_variables_follow_the_deployment() -> None:
    """$dimension lists the labels of exporter_stats_events_total but the scrape's own (so the
    declared dimensions, and type when none is declared); $value lists the chosen one's values;
    the heatmap reads the bucket series as a heatmap."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    dimension = variables["dimension"]
    assert dimension["query"]["query"] == "label_names(exporter_stats_events_total)"
    allowed = re.compile(dimension["regex"].strip("/"))
    labels = ["__name__", "instance", "job", "type", "country", "channel"]
    assert [name for name in labels if allowed.fullmatch(name)] == ["type", "country", "channel"]
    assert variables["value"]["query"]["query"] == (
        'label_values(exporter_stats_events_total{type=~"$type"}, $dimension)'
    )
    (heatmap,) = [p for p in dashboard()["panels"] if p["type"] == "heatmap"]
    assert heatmap["targets"][0]["format"] == "heatmap"
    assert heatmap["options"]["calculate"] is False
