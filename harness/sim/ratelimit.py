"""Rate limits of the simulator server (`harness sim serve --rpm N --tpm N`), as OpenAI sets them.

Two token buckets, requests and tokens, refilled continuously at `rpm / 60` and `tpm / 60`
a second and holding `burst_s` seconds of their rate (OpenAI enforces a per-minute limit
over shorter periods too: a 600 RPM key cannot send 600 requests in the first second).
A request is charged its estimated tokens when it arrives, as OpenAI counts them: prompt
characters / 4 plus ``max_tokens x n`` (16 tokens when it sends no ``max_tokens``;
`harness.targets.ratelimit.estimate_tokens`). It is
admitted when one request and its tokens are in the buckets (a request larger than the
tokens bucket waits for a full bucket and leaves it in debt); otherwise it is answered
HTTP 429 with ``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms`` (exact),
the time until it would be admitted. A refused request costs nothing (OpenAI documents
that refused requests count against the limit; not charging them is the kinder choice
for a client that retries blindly, so a fixed-concurrency baseline is not penalised twice).

Every chat answer, admitted or refused, carries OpenAI's headers:
``x-ratelimit-limit-requests`` / ``-tokens`` (per minute), ``x-ratelimit-remaining-*``
(whole units left after this request) and ``x-ratelimit-reset-*`` (time until the bucket
is full again, as ``1.5s``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.targets.ratelimit import TokenBucket


@dataclass
class RateLimitCounts:
    """What the limiter answered (tests and the benchmark read these)."""

    admitted: int = 0
    refused: int = 0
    tokens_admitted: int = 0


class ServerRateLimit:
    """Admits or refuses chat requests against requests- and tokens-per-minute limits."""

    def __init__(self, rpm: float | None, tpm: float | None, *, burst_s: float = 1.0,
                 headers: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        if rpm is None and tpm is None:
            raise ValueError("a rate limit needs rpm or tpm")
        self.rpm, self.tpm = rpm, tpm
        self.send_headers = headers
        self.counts = RateLimitCounts()
        self.requests = (TokenBucket(rpm / 60.0, max(1.0, rpm / 60.0 * burst_s), clock)
                         if rpm is not None else None)
        self.tokens = (TokenBucket(tpm / 60.0, max(1.0, tpm / 60.0 * burst_s), clock)
                       if tpm is not None else None)

    def admit(self, tokens: int) -> tuple[bool, dict[str, str]]:
        """(admitted, headers for the answer) for a request charged `tokens`."""
        waits = []
        if self.requests is not None and self.requests.level < 1.0:
            waits.append((1.0 - self.requests.level) / self.requests.rate)
        if self.tokens is not None:
            need = min(float(tokens), self.tokens.capacity)
            if self.tokens.level < need:
                waits.append((need - self.tokens.level) / self.tokens.rate)
        admitted = not waits
        if admitted:
            if self.requests is not None:
                self.requests.reserve(1.0)
            if self.tokens is not None:
                self.tokens.reserve(float(tokens))
            self.counts.admitted += 1
            self.counts.tokens_admitted += tokens
        else:
            self.counts.refused += 1
        headers = self._headers() if self.send_headers else {}
        if not admitted:
            wait = max(waits)
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return admitted, headers

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind, bucket, per_minute in (("requests", self.requests, self.rpm),
                                         ("tokens", self.tokens, self.tpm)):
            if bucket is None or per_minute is None:
                continue
            level = bucket.level
            out[f"x-ratelimit-limit-{kind}"] = f"{per_minute:g}"
            out[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(level)))
            to_full_s = max(0.0, bucket.capacity - level) / bucket.rate
            out[f"x-ratelimit-reset-{kind}"] = f"{to_full_s:.3f}s"
        return out
