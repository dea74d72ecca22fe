"""The live page: one self-contained HTML file, told at start-up what it reads and links to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Final

from exporter.store.detail import CountingConfig

_SLOT: Final = b'<script id="page-info" type="application/json">{}</script>'


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What the page says about its deployment: the store (redacted) and the dashboards."""

    store_description: str | None = None
    grafana_url: str | None = None
    prometheus_url: str | None = None


def render_page(info: PageInfo, counting: CountingConfig | None = None) -> bytes:
    """The page with `info`, and the dimensions it may break types down by, in its JSON slot
    (escaped so that no text can end the script)."""
    template = resources.files("exporter.web").joinpath("page/index.html").read_bytes()
    data = json.dumps(
        {
            "store": info.store_description,
            "grafana": info.grafana_url,
            "prometheus": info.prometheus_url,
            "dimensions": list(counting.dimensions) if counting else [],
        }
    )
    # '<' as \u003c: a value holding "</script>" stays inside the JSON.
    safe = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    slot = _SLOT.replace(b"{}", safe.encode())
    assert template.count(_SLOT) == 1, "page/index.html lost its page-info slot"
    return template.replace(_SLOT, slot)


__all__ = ["PageInfo", "render_page"]
