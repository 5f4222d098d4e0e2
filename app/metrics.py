"""Prometheus metrics of one service instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily, Metric

_LATENCY_BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)


class BatchHistogram:
    """A Prometheus histogram that takes a request's observations at once (one lock per request, not per
    decision); exposed exactly like ``prometheus_client.Histogram`` (``_bucket``, ``_count``, ``_sum``)."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float], registry: CollectorRegistry) -> None:
        self._name, self._doc = name, documentation
        self._bounds = [*buckets, float("inf")]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, seconds: float) -> None:
        """One observation."""
        self.observe_many((seconds,))

    def observe_many(self, values: Iterable[float]) -> None:
        """Several observations."""
        bounds, counts = self._bounds, [0] * len(self._bounds)
        total = 0.0
        for v in values:
            counts[bisect_left(bounds, v)] += 1  # the first bound >= v: Prometheus buckets are "le"
            total += v
        with self._lock:
            mine = self._counts
            for i, n in enumerate(counts):
                if n:
                    mine[i] += n
            self._sum += total

    def collect(self) -> Iterator[Metric]:
        """The histogram family, cumulative as Prometheus wants it."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip(self._bounds, counts, strict=True):
            running += n
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        family = HistogramMetricFamily(self._name, self._doc, buckets=cumulative, sum_value=total)
        yield family

    def describe(self) -> list[Metric]:
        """Registration needs the names without sampling."""
        return [HistogramMetricFamily(self._name, self._doc)]


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "accessgov_decisions", "Decisions answered, by effect and source system.",
            ["effect", "system"], registry=self.registry,
        )
        self.decision_seconds = BatchHistogram(
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
        self._children: dict[tuple[str, str], Counter] = {}

    def count_decisions(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add one request's decisions, by (effect, system)."""
        for key, n in counts.items():
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.decisions.labels(*key)
            child.inc(n)
