"""Request bodies as the adapter reads them: strict types for the fields it interprets, the rest forwarded.

Every field the adapter itself acts on (streaming, choices, stop strings, prompts, tools, tool_choice, the
thinking switches, logprobs) is checked here, with strict types (`"stream": "false"` is a string, not a
boolean), so a malformed request is a 400 with an OpenAI error body naming the field instead of a crash
or a wrong guess. Fields the adapter only forwards are left to the backend to validate (its 400s are
passed on). The request limits (`pipeline.request_limits`) are checked here too.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from pipeline.request_limits import RequestLimits


class RequestError(ValueError):
    """A request the adapter refuses: `status` (400 or 413) with an OpenAI error body naming `param`."""

    def __init__(self, param: str | None, message: str, status: int = 400):
        super().__init__(f"{param}: {message}" if param else message)
        self.param, self.status = param, status


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: StrictStr
    text: StrictStr | None = None

    @model_validator(mode="after")
    def _text_parts_have_text(self):
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs a string `text`")
        return self


class Message(_Open):
    role: StrictStr
    content: StrictStr | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class Function(_Open):
    name: StrictStr = Field(min_length=1)
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    type: Literal["function"]
    function: Function


class NamedFunction(_Open):
    name: StrictStr


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunction


class Thinking(_Open):
    type: Literal["enabled", "disabled"]


class _Sampling(_Open):
    stream: StrictBool = False
    n: StrictInt = Field(1, ge=1)
    stop: StrictStr | list[StrictStr] | None = None

    def stop_count(self) -> int:
        return 0 if self.stop is None else 1 if isinstance(self.stop, str) else len(self.stop)


class ChatBody(_Sampling):
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    thinking: StrictBool | Thinking | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0)


class CompletionBody(_Sampling):
    prompt: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]

    def prompt_count(self) -> int:
        return len(self.prompt) if isinstance(self.prompt, list) and self.prompt and \
            not isinstance(self.prompt[0], int) else 1


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def load_json(raw: bytes) -> dict:
    """A request body as a JSON object; RequestError (400) for anything else, however it is malformed."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise RequestError("body", f"invalid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise RequestError("body", f"expected a JSON object, got {type(data).__name__}")
    return data


def parse(model: type[_Sampling], data: dict, limits: RequestLimits):
    """Validate `data` as `model` and against the request limits."""
    try:
        body = model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or "body"
        raise RequestError(param, first["msg"]) from None
    except RecursionError:
        raise RequestError("body", "nested too deeply") from None
    checks = [("n", body.n, limits.max_n), ("stop", body.stop_count(), limits.max_stop)]
    if isinstance(body, CompletionBody):
        checks.append(("prompt", body.prompt_count(), limits.max_prompts))
    for param, value, most in checks:
        if value > most:
            raise RequestError(param, f"at most {most} allowed on this server; got {value}")
    return body
