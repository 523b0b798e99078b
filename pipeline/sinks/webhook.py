"""HTTP webhook sink: JSON POST with an ``Idempotency-Key`` header, retried with exponential
backoff (IETF draft "The Idempotency-Key HTTP Header Field"; receivers dedupe on the key)."""

from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from pipeline.sinks import Sink, SinkError

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class WebhookSink(Sink):
    name = "webhook"

    def __init__(self, url: str, *, tries: int = 3, backoff_s: float = 0.5, timeout_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, client: httpx.Client | None = None) -> None:
        self.url = url
        self.tries = tries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.client = client or httpx.Client(timeout=timeout_s)

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        """POST once per try (waits backoff, 2x backoff, ... between tries); raise after the last."""
        error = "no attempt"
        for attempt in range(self.tries):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(self.url, json=payload, headers={"Idempotency-Key": key})
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return
            error = f"HTTP {response.status_code}"
            if response.status_code not in RETRYABLE:
                break
        raise SinkError(f"webhook {self.url}: {error}")

    def close(self) -> None:
        self.client.close()
