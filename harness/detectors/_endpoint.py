"""How the judge and moderation detectors reach a model: as a target of `harness.targets`.

`base_url: sim` is the simulator as the `sim` target (in process; it answers judge prompts
with the simulated judge and moderates with the simulated classifier). Any other base URL
(or none: the OpenAI API) is an `openai:<model>` target, so the detectors use the openai
target's client and connection pool, its key lookup (the key read from `api_key_env`,
never stored) and the retry policy of the `DetectorContext` their pool was given.
"""

from __future__ import annotations

from harness.detectors.base import DetectorContext, DetectorParamError
from harness.errors import MissingKeyError, UsageError
from harness.targets import make_target
from harness.targets.base import Target

SIM_BASE_URL = "sim"
"""The `base_url` that names the embedded simulator (the `sim` target), not an endpoint."""


def model_target(detector: str, model: str, base_url: str | None, api_key_env: str,
                 context: DetectorContext | None) -> Target:
    """The target `detector` asks (`sim`, or `openai:<model>` at `base_url`).

    Built when the detector is, so a missing key or a bad URL is a setup error
    (`DetectorParamError` naming `api_key_env` or `base_url`), not one error per sample.
    """
    if base_url == SIM_BASE_URL:
        return make_target("sim")
    ctx = context or DetectorContext()
    try:
        return make_target(f"openai:{model}",
                           options={"base_url": base_url, "api_key_env": api_key_env},
                           concurrency=ctx.concurrency, retry_policy=ctx.retry_policy)
    except MissingKeyError as exc:
        raise DetectorParamError(
            detector, "api_key_env",
            f"environment variable {exc.variable} is not set; export the API key for "
            f"{base_url or 'the OpenAI API'} in {exc.variable}, or name another variable "
            "with api_key_env") from None
    except UsageError as exc:
        raise DetectorParamError(detector, "base_url", str(exc)) from None
