"""The operator docs: links and anchors resolve; the architecture diagram names every part."""

from __future__ import annotations

import re
from pathlib import Path

from tests.stack.files import COMPOSE, ROOT, github_anchors

DOCS = ROOT / "docs"
OWN_DOCS = (
    DOCS / "operations.md",
    DOCS / "architecture.md",
    DOCS / "kubernetes.md",
    DOCS / "events.md",
    DOCS / "metrics.md",
)


def _links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _resolve(source: Path, link: str) -> tuple[Path, str]:
    target, _, anchor = link.partition("#")
    return (source.parent / target if target else source).resolve(), anchor


def test_relative_links_and_anchors_resolve() -> None:
    """Each relative link in the operator docs and the event contract names a file, heading."""
    for doc in OWN_DOCS:
        for link in _links(doc.read_text(encoding="utf-8")):
            if link.startswith(("http://", "https://")):
                continue
            path, anchor = _resolve(doc, link)
            assert path.exists(), f"{doc.name}: {link}"
            if anchor:
                assert anchor in github_anchors(path.read_text(encoding="utf-8")), (
                    f"{doc.name}: {link}"
                )


def test_compose_comments_point_at_existing_sections() -> None:
    """The docs/operations.md anchors cited in docker-compose.yaml exist."""
    anchors = github_anchors((DOCS / "operations.md").read_text(encoding="utf-8"))
    cited = re.findall(r"docs/operations\.md#([\w-]+)", COMPOSE.read_text())
    assert cited
    for anchor in cited:
        assert anchor in anchors, anchor


def test_architecture_diagram_shows_the_whole_data_flow() -> None:
    """The Mermaid diagram shows producer, SQS, DLQ, processors, Redis, API, metrics and traces."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    for part in (
        "producer",
        "queue",
        "dlq",
        "processor",
        "redis",
        "api",
        "prometheus",
        "grafana",
        "collector",
        "jaeger",
    ):
        assert part in diagram.lower(), part
