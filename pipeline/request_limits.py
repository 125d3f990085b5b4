"""Per-request bounds that the Hunyuan adapter and the CPU stand-in enforce (profile keys of the same names).

trtllm-serve itself bounds none of these, so one oversized request could tie up a replica: the adapter
refuses it with an OpenAI error before anything reaches the backend. The defaults and their reasons:

- max_request_bytes 8 MiB: a 32,768-token prompt is well under 1 MB of JSON even when every character is
  escaped (`\\u` and four hex digits); 8 MiB leaves room for long histories and tool schemas and turns away
  the 10 MB and 100 MB bodies that took replicas down (issue #17). Answered with 413 before the body is read.
- max_n 16: each choice is a sequence in the batch; OpenAI clients rarely ask for more than a few.
- max_prompts 64: /v1/completions prompts in one call, each a sequence (3,000 were accepted before).
- max_stop 16: every stop string is searched after every token (OpenAI itself allows 4).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RequestLimits:
    max_request_bytes: int = 8 * 1024 * 1024
    max_n: int = 16
    max_prompts: int = 64
    max_stop: int = 16

    @classmethod
    def from_profile(cls, profile: dict) -> RequestLimits:
        """The limits named in a resolved profile (bundle.json's `resolved_profile`); defaults for the rest."""
        return cls(**{f.name: profile[f.name] for f in fields(cls) if profile.get(f.name) is not None})


DEFAULT_LIMITS = RequestLimits()
