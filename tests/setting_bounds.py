"""A numeric setting's bounds as its check holds them, read apart from the code that shows them."""

from __future__ import annotations

from typing import Final

from annotated_types import Ge, Gt, Le, Lt

from exporter.settings import Settings

_BOUNDS: Final[dict[type, str]] = {Ge: "ge", Gt: "gt", Le: "le", Lt: "lt"}


def bound_numbers(field: str) -> list[str]:
    """The numbers of `field`'s ge/gt/le/lt bounds, as a reader would write them (34560000)."""
    numbers = []
    for bound in Settings.model_fields[field].metadata:
        attribute = _BOUNDS.get(type(bound))
        if attribute is not None:
            value = getattr(bound, attribute)
            numbers.append(str(int(value)) if float(value).is_integer() else str(value))
    return numbers
