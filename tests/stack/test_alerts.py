"""Alert rules: each has a runbook section, a sensible `for:`, and promtool tests both ways."""

from __future__ import annotations

import re

from tests.stack.files import ALERT_TESTS, OPERATIONS_DOC, alert_rules, github_anchors, load_yaml

# What the issue asks alerts for, by the alert that answers each.
REQUIRED = {
    "a processor is down": "ExporterProcessorDown",
    "no processor at all": "ExporterNoProcessorUp",
    "nothing processed while the queue has messages": "ExporterNotProcessing",
    "the dead-letter queue is not empty": "ExporterDeadLetterQueueNotEmpty",
    "the dead-letter queue is growing": "ExporterDeadLetterQueueGrowing",
    "the invalid-event ratio is high": "ExporterInvalidEventRatioHigh",
    "event lag is high": "ExporterEventLagHigh",
    "dependency errors": "ExporterDependencyErrors",
    "queue backlog growing": "ExporterQueueBacklogGrowing",
    "the API is failing": "ExporterApiErrors",
    "the API is down": "ExporterApiDown",
    "dimension values or combinations fold into __other__": "ExporterDimensionFolding",
}


def _minutes(duration: str) -> float:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration
    return int(match.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[match.group(2)]


def test_every_required_alert_exists() -> None:
    """Each condition the issue names has an alert."""
    names = {rule["alert"] for rule in alert_rules()}
    missing = {need: alert for need, alert in REQUIRED.items() if alert not in names}
    assert not missing


def test_every_alert_has_a_runbook_section() -> None:
    """runbook_url points at docs/operations.md#<alert in lower case>, and that heading exists."""
    anchors = github_anchors(OPERATIONS_DOC.read_text(encoding="utf-8"))
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
        assert url.partition("#")[2] in anchors, f"no runbook section for {rule['alert']}"


def test_every_alert_waits_a_sensible_time_and_has_a_severity() -> None:
    """`for:` is between 1 minute and 1 hour; severity is warning or critical; a summary exists."""
    for rule in alert_rules():
        assert 1 <= _minutes(rule["for"]) <= 60, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    """alerts.test.yml has, for each alert, a case where it fires and one where it stays quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "never shown to fire"
    assert names - quiet == set(), "never shown to stay quiet"
