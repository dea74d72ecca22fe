"""Container health check: GET /health on the port of whichever exporter role runs here.

The processor serves /health on EXPORTER_METRICS_PORT (default 9108), the API on EXPORTER_API_PORT
(default 8000). A container runs one role, so exactly one of the two ports listens: the first that
accepts a connection decides. Exit 0 when it answers 200, 1 otherwise (Docker's convention).
Standard library only: it runs every few seconds and must stay cheap.
"""

from __future__ import annotations

import http.client
import os
import sys

ROLE_PORTS = (("EXPORTER_METRICS_PORT", 9108), ("EXPORTER_API_PORT", 8000))
TIMEOUT_SECONDS = 2.0


def _ports(environ: dict[str, str]) -> list[int]:
    return [int(environ.get(variable) or default) for variable, default in ROLE_PORTS]


def check(environ: dict[str, str], host: str = "127.0.0.1") -> tuple[bool, str]:
    """Whether the role listening here reports itself healthy, and why."""
    for port in _ports(environ):
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("GET", "/health")
            status = connection.getresponse().status
        except ConnectionRefusedError:
            continue  # not this role's port
        except OSError as exc:
            return False, f"port {port}: {exc}"
        finally:
            connection.close()
        return status == 200, f"port {port}: /health answered {status}"
    return False, "nothing listens on " + ", ".join(str(p) for p in _ports(environ))


def main() -> int:
    """Print the verdict for `docker inspect` and exit with Docker's health convention."""
    healthy, reason = check(dict(os.environ))
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
