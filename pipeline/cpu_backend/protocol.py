"""Request bodies and error shapes of the CPU stand-in, mirroring trtllm-serve's OpenAI protocol.

Like trtllm-serve, unknown top-level fields are rejected (`extra="forbid"`), and trtllm/vLLM extension
fields (`top_k`, `min_tokens`, `ignore_eos`, `repetition_penalty`, `chat_template_kwargs`, ...) are
accepted. Every validation problem becomes a 400 with an OpenAI-style `{"error": {...}}` body that names
the field.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_TOP_LOGPROBS = 20  # OpenAI's bound for top_logprobs


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, param: str | None = None,
                 err_type: str = "BadRequestError"):
        super().__init__(message)
        self.message, self.status, self.param, self.err_type = message, status, param, err_type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param,
                          "code": self.status}}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False
    continuous_usage_stats: bool = False


class Message(BaseModel):
    """One chat message; extra keys (e.g. `reasoning_content` from a previous turn) pass to the template."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def flat(self) -> dict:
        """The message as the chat template expects it: content parts joined into one string."""
        data = self.model_dump(exclude_none=True)
        if isinstance(self.content, list):
            data["content"] = "".join(_text_part(i, part) for i, part in enumerate(self.content))
        return data


def _text_part(index: int, part: dict) -> str:
    if part.get("type") != "text" or not isinstance(part.get("text"), str):
        raise RequestError(f"content[{index}]: only text parts are supported, got type {part.get('type')!r}",
                           param="messages")
    return part["text"]


class SamplingFields(BaseModel):
    """Fields shared by chat and text completions (OpenAI names plus trtllm-serve extensions)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)  # the upper bound is the server's request limit (Service.check_limits)
    best_of: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=-(2 ** 63), lt=2 ** 63)  # torch.Generator's range
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    logit_bias: dict[str, float] | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    user: str | None = None

    @model_validator(mode="after")
    def _rules(self):
        """best_of, when given, must equal n (no beam search here); stream_options needs stream."""
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError(f"best_of must equal n on this server (no beam search); got best_of={self.best_of}, n={self.n}")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]


class ChatRequest(SamplingFields):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto"] | dict[str, Any] | None = None  # trtllm-serve's values (upstream_facts.json)
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    add_generation_prompt: bool = True

    @model_validator(mode="after")
    def _chat_rules(self):
        """top_logprobs needs logprobs (as trtllm-serve says); structured output is not implemented by the
        stand-in: refuse rather than ignore."""
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}; got {self.top_logprobs}")
        if self.top_logprobs and not self.logprobs:
            raise ValueError("logprobs must be true when using top_logprobs")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise ValueError("response_format: only {'type': 'text'} is supported by the CPU backend")
        return self

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def logprob_count(self) -> int | None:
        """None: no logprobs; k: logprobs with the k most likely alternatives."""
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None

    @model_validator(mode="after")
    def _completion_rules(self):
        """echo and suffix are not implemented by the stand-in: refuse rather than ignore."""
        if self.echo or self.suffix:
            raise ValueError("echo and suffix are not supported by the CPU backend")
        if self.logprobs is not None and not 0 <= self.logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"logprobs must be between 0 and {MAX_TOP_LOGPROBS}; got {self.logprobs}")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be empty")
        return self

    def token_limit(self) -> int | None:
        return self.max_tokens

    def logprob_count(self) -> int | None:
        return self.logprobs

    def prompts(self) -> list[str | list[int]]:
        """The prompt as a list: one entry per string or token-id list."""
        if isinstance(self.prompt, str) or isinstance(self.prompt[0], int):
            return [self.prompt]
        return list(self.prompt)


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """JSON body → request model, or RequestError(400) naming the offending field."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("request body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError(f"request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except RecursionError:
        raise RequestError("request body is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise RequestError(f"{field}: {first['msg']}", param=field) from None
