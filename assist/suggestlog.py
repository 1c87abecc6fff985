"""The suggestion log: what every suggest response showed, written off the request path in batches.

A request hands its record to `LogWriter.put` (a queue append, microseconds) and returns; one background
thread writes what has gathered every `flush_seconds` in one transaction. When the store is slow or
locked the rows wait in memory (up to `max_pending`, then the oldest are dropped and counted) and the
next flush tries again: a request never waits for, or fails because of, the log.
"""

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuggestionRecord:
    request_id: str
    session_id: str | None
    customer_ref: str | None  # a hash of the customer id: erasure finds the rows, the id itself is not kept
    query: str  # redacted by the store
    intent: str
    confidence: float
    abstained: bool
    escalate: bool
    answers: tuple[str, ...]  # article ids shown, rank order
    templates: tuple[str, ...]  # template ids shown, rank order
    top_similarity: float | None
    latency_ms: float
    index_version: str
    model: str
    arm: str | None = None
    created_at: str = ""
    vector: bytes | None = None  # the query vector, int8 (see `quantize`): the review clusters without re-encoding


def quantize(vector) -> bytes | None:
    """A unit query vector as int8 bytes (384 bytes for e5-small; cosines keep ~2 decimals)."""
    if vector is None:
        return None
    import numpy as np

    return np.clip(np.round(np.asarray(vector, dtype=np.float32) * 127), -127, 127).astype(np.int8).tobytes()


def dequantize(blob: bytes):
    import numpy as np

    return np.frombuffer(blob, dtype=np.int8).astype(np.float32) / 127


def new_request_id() -> str:
    return uuid.uuid4().hex


def customer_ref(customer: dict) -> str | None:
    """The stored stand-in for a customer's id (`id` or `customer_id` in the request's customer)."""
    value = customer.get("customer_id", customer.get("id"))
    if value in (None, ""):
        return None
    return hashlib.sha256(f"assist-customer:{value}".encode()).hexdigest()[:32]


class LogWriter:
    """Batches SuggestionRecords into `store.add_suggestions` from one daemon thread."""

    def __init__(self, store, flush_seconds: float = 0.5, max_pending: int = 50_000, on_drop=None):
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.on_drop = on_drop or (lambda n: None)
        self.dropped = 0
        self._pending: deque[SuggestionRecord] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="assist-suggestion-log", daemon=True)
        self._thread.start()

    def put(self, record: SuggestionRecord) -> None:
        with self._lock:
            self._pending.append(record)
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest rows past `max_pending` and count them (called holding the lock)."""
        over = len(self._pending) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            self.on_drop(over)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Write what is pending; False (rows kept for the next try) when the store refused."""
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
        if not batch:
            return True
        try:
            self.store.add_suggestions(batch)
        except Exception as exc:  # locked, full disk, gone: keep the rows, try again at the next flush
            log.warning("suggestion log: %d rows not written yet (%s: %s); retrying", len(batch), type(exc).__name__, exc)
            with self._lock:
                self._pending.extendleft(reversed(batch))
                self._trim()
            return False
        return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and write what is left (trying for up to `timeout` seconds)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(0.1)
