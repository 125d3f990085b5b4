"""The thinking switches: one `chat_template_kwargs.enable_thinking` for the backend's chat template.

`chat_template_kwargs` is forwarded as given. `thinking` (true/false or {"type": "enabled" | "disabled"}),
`reasoning_effort` ("none"/"minimal" = off, "low"/"medium"/"high" = on) and a leading "/no_think" or
"/think" in the last user message set `enable_thinking` unless the caller set it explicitly. `thinking`
and `reasoning_effort` are removed: trtllm-serve does not know the first and reads the second only for
harmony models.
"""

from __future__ import annotations

from pipeline.adapter.request import ChatBody

EFFORT_THINKS = {"none": False, "minimal": False, "low": True, "medium": True, "high": True}
THINKING_TYPES = {"enabled": True, "disabled": False}
PROMPT_SWITCHES = (("/no_think", False), ("/think", True))


def _choice(body: ChatBody) -> bool | None:
    if isinstance(body.thinking, bool):
        return body.thinking
    if body.thinking is not None:
        return THINKING_TYPES[body.thinking.type]
    if body.reasoning_effort is not None:
        return EFFORT_THINKS[body.reasoning_effort]
    last_user = next((m for m in reversed(body.messages) if m.role == "user"), None)
    text = last_user.text().lstrip() if last_user else ""
    return next((on for prefix, on in PROMPT_SWITCHES if text.startswith(prefix)), None)


def apply_thinking(payload: dict, body: ChatBody) -> None:
    """Map the switches onto chat_template_kwargs.enable_thinking in `payload` (explicit kwargs win)."""
    payload.pop("thinking", None)
    payload.pop("reasoning_effort", None)
    kwargs = dict(body.chat_template_kwargs or {})
    choice = _choice(body)
    if choice is not None:
        kwargs.setdefault("enable_thinking", choice)
    if kwargs:
        payload["chat_template_kwargs"] = kwargs
