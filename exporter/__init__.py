"""Business events from SQS as exact Redis totals, Prometheus metrics and a stats API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sqs-metrics-exporter")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0.0.0+unknown"
