"""Prometheus metrics of one service instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "accessgov_decisions", "Decisions answered, by effect and source system.",
            ["effect", "system"], registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "accessgov_decision_seconds", "Time to resolve and decide one evaluation (no HTTP).",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.log_queue_depth = Gauge(
            "accessgov_decision_log_queue_depth", "Decisions waiting to be written.", registry=self.registry,
        )
        self.log_dropped = Counter(
            "accessgov_decision_log_dropped", "Decisions not logged because the buffer was full.",
            registry=self.registry,
        )
        self.log_write_failures = Counter(
            "accessgov_decision_log_write_failures", "Failed decision-log batch writes (retried).",
            registry=self.registry,
        )
        self.policy_version = Gauge(
            "accessgov_policy_revision", "Revision of the policy and grants decisions use.", registry=self.registry,
        )
