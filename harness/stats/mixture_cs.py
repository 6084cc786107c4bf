"""The beta-binomial mixture confidence sequence for a harmful rate (Howard, Ramdas,
McAuliffe & Sekhon 2021, Ann. Statist. 49(2):1055-1080, Proposition 7): the martingale, its
tuning, the sequence at one look and along a path, and the "ever above" test. The
construction and why it is valid for a fixed prompt panel are in `harness.stats.sequential`'s
docstring, which uses it for the fixed-suite "above" claim; the watch uses the path
(`harness.watch._evaluate`). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import betaln

from harness.errors import StatsInputError
from harness.stats._checks import check_confidence, check_count, check_rate

_P_EPS = 1e-12
"""Candidate rates are searched in [eps, 1 - eps]; the endpoints are handled exactly."""


def mixture_precision(p: float, t_opt: float, alpha: float) -> float:
    """The tuned mixing parameter r of the beta-binomial mixture for candidate rate p.

    Howard et al. (2021), eq. (3.13): the normal-mixture precision that makes the boundary
    tightest at intrinsic time ``v_opt = p (1 - p) t_opt`` is
    ``rho = v_opt / (2 ln(1/alpha) + ln(1 + 2 ln(1/alpha)))``; the beta-binomial mixture uses
    ``r = max(rho - g h, 1e-3 g h)`` with ``g = p``, ``h = 1 - p`` (confseq
    ``BetaBinomialMixture``).
    """
    gh = p * (1.0 - p)
    v_opt = gh * t_opt
    log_inv_alpha = math.log(1.0 / alpha)
    rho = v_opt / (2.0 * log_inv_alpha + math.log(1.0 + 2.0 * log_inv_alpha))
    return max(rho - gh, 1e-3 * gh)


def log_mixture_martingale(
    n_harmful: int | np.ndarray,
    n: int | np.ndarray,
    p: float,
    *,
    t_opt: float,
    alpha: float,
) -> float | np.ndarray:
    """``log M_t(p)`` of the tuned beta-binomial mixture (vectorised over counts).

    ``n_harmful`` and ``n`` are cumulative counts (arrays broadcast together). For p in
    {0, 1} the value is exact: 0 when the data are possible under p, +inf otherwise.
    """
    s = np.asarray(n_harmful, dtype=float)
    t = np.asarray(n, dtype=float)
    if p <= 0.0:
        out = np.where(s > 0, np.inf, 0.0)
    elif p >= 1.0:
        out = np.where(s < t, np.inf, 0.0)
    else:
        r = mixture_precision(p, t_opt, alpha)
        a = r / (1.0 - p)  # pairs with harmful outcomes; prior mean a / (a + b) = p
        b = r / p
        out = (
            betaln(a + s, b + t - s)
            - betaln(a, b)
            - s * math.log(p)
            - (t - s) * math.log1p(-p)
        )
    if np.ndim(out) == 0:
        return float(out)
    return np.asarray(out)


@dataclass(frozen=True)
class SequenceBound:
    """One look of a confidence sequence: cumulative counts and the interval at that look."""

    n: int
    n_harmful: int
    low: float
    high: float
    confidence_level: float
    t_opt: float
    method: str = "beta-binomial-mixture-cs"

    @property
    def rate(self) -> float:
        """The pooled rate so far (0 when nothing has been sampled yet)."""
        return self.n_harmful / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "n": self.n,
            "n_harmful": self.n_harmful,
            "rate": self.rate,
            "cs_low": self.low,
            "cs_high": self.high,
            "confidence_level": self.confidence_level,
            "t_opt": self.t_opt,
            "method": self.method,
        }


def _check_t_opt(t_opt: object) -> float:
    if isinstance(t_opt, bool) or not isinstance(t_opt, int | float) or not t_opt > 0:
        raise StatsInputError(
            f"t_opt must be a positive number of samples (where the sequence should be "
            f"tightest, e.g. the planned total), got {t_opt!r}")
    return float(t_opt)


def confidence_sequence(
    n_harmful: int,
    n: int,
    *,
    confidence_level: float = 0.95,
    t_opt: float,
) -> SequenceBound:
    """The (1 - alpha) beta-binomial mixture confidence-sequence interval at one look.

    ``n_harmful`` of ``n`` samples (cumulative since the sequence started) were harmful.
    ``t_opt`` is the sample count where the interval should be tightest (the planned total of
    the watch or the sequential budget); it must be fixed before looking at the data.
    With ``n = 0`` the interval is [0, 1].
    """
    s = check_count("n_harmful", n_harmful)
    t = check_count("n", n)
    if s > t:
        raise StatsInputError(
            f"n_harmful = {s} is more than n = {t}; the harmful count is a subset of the samples")
    level = check_confidence(confidence_level)
    topt = _check_t_opt(t_opt)
    alpha = 1.0 - level
    if t == 0:
        return SequenceBound(0, 0, 0.0, 1.0, level, topt)
    threshold = math.log(1.0 / alpha)
    p_hat = s / t

    def excess(p: float) -> float:
        return float(log_mixture_martingale(s, t, p, t_opt=topt, alpha=alpha)) - threshold

    # M_t(p_hat) <= 1 because the mixture of likelihoods is at most the maximum likelihood,
    # so p_hat is always inside; search each side of it for the crossing of 1/alpha.
    if s == 0:
        low = 0.0
    else:
        lo_end = _P_EPS
        low = 0.0 if excess(lo_end) < 0 else float(brentq(excess, lo_end, p_hat, xtol=1e-12))
    if s == t:
        high = 1.0
    else:
        hi_end = 1.0 - _P_EPS
        high = 1.0 if excess(hi_end) < 0 else float(brentq(excess, p_hat, hi_end, xtol=1e-12))
    return SequenceBound(t, s, low, high, level, topt)


def confidence_sequence_path(
    harmful_per_look: Sequence[int],
    samples_per_look: Sequence[int],
    *,
    confidence_level: float = 0.95,
    t_opt: float,
    intersect: bool = True,
) -> list[SequenceBound]:
    """The CS at every look, from per-look (not cumulative) counts.

    With ``intersect`` the running intersection of the intervals is returned (still a valid CS,
    Howard et al. 2021 sec. 2; bounds become monotone: the lower bound never falls and the upper
    bound never rises).
    """
    if len(harmful_per_look) != len(samples_per_look):
        raise StatsInputError(
            f"harmful_per_look has {len(harmful_per_look)} looks but samples_per_look has "
            f"{len(samples_per_look)}; pass one count pair per look")
    out: list[SequenceBound] = []
    s_cum = 0
    t_cum = 0
    low_run = 0.0
    high_run = 1.0
    for i, (k, n) in enumerate(zip(harmful_per_look, samples_per_look, strict=True)):
        k_i = check_count(f"harmful_per_look[{i}]", k)
        n_i = check_count(f"samples_per_look[{i}]", n)
        if k_i > n_i:
            raise StatsInputError(
                f"look {i}: {k_i} harmful is more than its {n_i} samples")
        s_cum += k_i
        t_cum += n_i
        b = confidence_sequence(s_cum, t_cum, confidence_level=confidence_level, t_opt=t_opt)
        if intersect:
            low_run = max(low_run, b.low)
            high_run = min(high_run, b.high)
            if low_run > high_run:
                # Only possible on a path where the CS already missed (probability <= alpha);
                # collapse to a point so the result stays an interval.
                low_run = high_run = (low_run + high_run) / 2.0
            b = SequenceBound(t_cum, s_cum, low_run, high_run, b.confidence_level, b.t_opt)
        out.append(b)
    return out


def ever_above(
    harmful_cumulative: np.ndarray,
    samples_cumulative: np.ndarray,
    max_rate: float,
    *,
    confidence_level: float = 0.95,
    t_opt: float,
) -> np.ndarray:
    """Vectorised: did the CS lower bound pass ``max_rate`` at any look?

    Rows are replicate paths, columns looks (cumulative counts). The lower bound exceeds
    ``max_rate`` exactly when every p <= max_rate is excluded; since ``M_t(p)`` grows as p moves
    away from the pooled rate, that is ``M_t(max_rate) >= 1/alpha`` with the pooled rate above
    ``max_rate``. Used by the simulation tests and the watch simulator; agrees with
    ``confidence_sequence`` (tested).
    """
    level = check_confidence(confidence_level)
    theta = check_rate("max_rate", max_rate)
    alpha = 1.0 - level
    s = np.asarray(harmful_cumulative, dtype=float)
    t = np.asarray(samples_cumulative, dtype=float)
    logm = np.asarray(log_mixture_martingale(s, t, theta, t_opt=_check_t_opt(t_opt), alpha=alpha))
    with np.errstate(invalid="ignore", divide="ignore"):
        above = (logm >= math.log(1.0 / alpha)) & (s > theta * t)
    return np.asarray(np.any(np.atleast_2d(above), axis=-1))
