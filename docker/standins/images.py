"""Which base images the stack needs, read from the Dockerfile and docker-compose.yaml.

Prints one line per image, `<kind> <image>`, where kind names the stand-in recipe
(Containerfile.<kind>) that can replace it, or `none` when no stand-in exists (Grafana, the
OpenTelemetry collector, Jaeger: nothing in Debian provides them). Used by prepare.sh.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Repository (without registry and tag) -> stand-in recipe.
KINDS = {
    "library/python": "python",
    "library/redis": "redis",
    "prom/prometheus": "prometheus",
}


def qualified(image: str) -> str:
    """The fully qualified name Docker and podman store an image under (docker.io/library/...)."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def kind(image: str) -> str:
    """The stand-in recipe for an image, or `none`."""
    name = qualified(image).rsplit(":", 1)[0]
    repository = name.split("/", 1)[1]
    return KINDS.get(repository, "none")


def dockerfile_bases(text: str) -> list[str]:
    """Images of the Dockerfile's FROM lines, stage names left out."""
    stages: set[str] = set()
    bases = []
    pattern = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", re.MULTILINE | re.IGNORECASE)
    for match in pattern.finditer(text):
        image, stage = match.group(1), match.group(2)
        if image not in stages and image not in bases:
            bases.append(image)
        if stage:
            stages.add(stage)
    return bases


def compose_images(text: str) -> list[str]:
    """Images of the compose services that are pulled, not built here."""
    services = yaml.safe_load(text)["services"]
    return [s["image"] for s in services.values() if "image" in s and "build" not in s]


def main() -> int:
    """Print `<kind> <qualified image>` for every base image, Dockerfile first."""
    images = dockerfile_bases((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    images += compose_images((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    seen: set[str] = set()
    for image in images:
        if qualified(image) not in seen:
            seen.add(qualified(image))
            print(kind(image), qualified(image))
    return 0


if __name__ == "__main__":
    sys.exit(main())
