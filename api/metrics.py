"""Prometheus metrics of one app, in their own registry (so several apps can live in one test process).

With `--workers N` the workers write their values to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode; `assist serve` sets a fresh folder up), and a scrape answered by any worker reports
the sum over all of them: counters and histograms keep the counts of workers that have exited, gauges
count live workers only. Each replica is scraped on its own.
"""

import os
import re
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")

disable_created_metrics()  # the *_created series double the output and nobody here graphs them

# Suggest takes single-digit milliseconds with the ONNX model: buckets resolve 1-100 ms finely.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        # Chosen by prometheus_client when it is first imported; the same test here, so both agree.
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = r = CollectorRegistry()
        self.requests = Counter("assist_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.suggest_latency = Histogram("assist_suggest_latency_seconds", "time to compute one suggestion",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.intents = Counter("assist_intents_detected", "detected intents by name", ["intent"], registry=r)
        self.escalations = Counter("assist_escalations", "suggestions that flagged escalation", registry=r)
        self.abstains = Counter("assist_abstains", "suggestions without a good KB answer", registry=r)
        self.feedback = Counter("assist_feedback", "feedback events by type", ["event"], registry=r)
        self.reloads = Counter("assist_index_reloads", "index reloads by result", ["result"], registry=r)
        self.public_searches = Counter("assist_help_searches", "help-centre searches by result (answered | abstained)", ["result"], registry=r)
        self.help_events = Counter("assist_help_events", "help-centre events by type (view, helpful, not_helpful, contact)", ["event"], registry=r)
        self.public_limited = Counter("assist_help_rate_limited", "public requests refused by the per-address rate limit", registry=r)
        self.deflection = Gauge("assist_help_deflection_ratio", "share of the last 24 hours' help sessions deflected "
                                "(opened an article, then voted helpful or never followed contact us)",
                                multiprocess_mode="livemostrecent", registry=r)
        self.log_dropped = Counter("assist_suggestion_log_dropped", "suggestion-log rows dropped because the store stayed unwritable", registry=r)
        # Several workers: 1 for each version some live worker serves (0 for one served before).
        self.index_info = Gauge("assist_index_info", "the index version being served (value 1)", ["version"],
                                multiprocess_mode="livemax", registry=r)
        self._version: str | None = None
        self._version_lock = threading.Lock()

    def observe_suggestion(self, seconds: float, intent: str, escalate: bool, abstained: bool) -> None:
        self.suggest_latency.observe(seconds)
        self.intents.labels(intent).inc()
        if escalate:
            self.escalations.inc()
        if abstained:
            self.abstains.inc()

    def set_index_version(self, version: str | None) -> None:
        with self._version_lock:
            if self._version is not None:
                if self.multiprocess_dir:  # a series cannot be removed from the workers' files
                    self.index_info.labels(self._version).set(0)
                else:
                    self.index_info.remove(self._version)
            if version is not None:
                self.index_info.labels(version).set(1)
            self._version = version

    def render(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        self._forget_dead_workers()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """This worker is going away: its live gauges stop counting (counters and histograms stay)."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)

    def _forget_dead_workers(self) -> None:
        # A worker killed without shutting down (SIGKILL, OOM) leaves its live gauges behind: drop them.
        for path in Path(self.multiprocess_dir).glob("gauge_live*.db"):
            match = LIVE_GAUGE_FILE.fullmatch(path.name)
            if match and not _alive(int(match.group(1))):
                mark_process_dead(int(match.group(1)), self.multiprocess_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
