"""Hunyuan raw output -> reasoning, content and tool calls, as a streaming state machine.

Format (Tencent's README and agent guide):
    slow thinking   <think>\\n{reasoning}\\n</think>\\n<answer>\\n{answer}\\n</answer>
    fast thinking   <answer>\\n{answer}\\n</answer>   (the prompt already ends with an empty think block)
    tool use        {answer} holds <tool_calls>[{"name": ..., "arguments": {...}}, ...]</tool_calls>
    plain text      anything else is content; a leading "助手：" (a chat-template artefact) is dropped.

Two layers, both fed text in arbitrary pieces (tags may be split across pieces):
  `_Sections` splits the stream into reasoning and content, dropping the think/answer tags and the single
  newline that the format puts inside each tag pair;
  `_Content` strips the template prefix, cuts `<tool_calls>` blocks out of the content and turns them into
  calls, and holds trailing whitespace back, so the spacing around a tool call never leaks as content and
  content never ends in whitespace.
`parse_text` runs the same machine over a whole text, so streamed and non-streamed results agree.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TOOLS_OPEN, TOOLS_CLOSE = "<tool_calls>", "</tool_calls>"
ASSISTANT_PREFIX = "助手："
# markers that may sit at the end of a piece, half arrived, per state
THINK_ENDS = ("\n" + THINK_CLOSE, THINK_CLOSE)
ANSWER_ENDS = ("\n" + ANSWER_CLOSE, ANSWER_CLOSE)
OPENERS = {THINK_OPEN: "think", ANSWER_OPEN: "answer"}


def held_suffix(text: str, markers) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `markers`."""
    best = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:size]):
                best = size
                break
    return best


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_calls_from_json(payload: str) -> list[dict] | None:
    """`[{"name": ..., "arguments": ...}]` -> [{"name", "arguments" (JSON string)}], or None if not a call list."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        return None
    calls = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and "arguments" in item:
            arguments = item["arguments"]
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            calls.append({"name": item["name"], "arguments": arguments})
    return calls or None


class _Sections:
    """Raw text -> ("reasoning" | "content", text) pieces; tags and their inner newlines removed."""

    def __init__(self):
        self.state = "start"
        self.buffer = ""
        self.strip_newline = False  # drop one "\n" right after an opening tag

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buffer += text
        out: list[tuple[str, str]] = []
        while self.buffer and self._step(out):
            pass
        return out

    def finish(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        rest, self.buffer = self.buffer, ""
        if self.state in ("start", "gap") and rest.strip():
            self._emit(out, "content", rest)
        elif self.state == "think":
            self._emit(out, "reasoning", rest.removesuffix("\n"))
        elif self.state == "answer":
            self._emit(out, "content", rest[:len(rest) - self._partial_close(rest)])
        self.state = "done"
        return out

    def _partial_close(self, text: str) -> int:
        """Size of a cut-off closing tag (or lone format newline) at the end of an answer."""
        size = held_suffix(text, ANSWER_ENDS)
        return size if text[len(text) - size:].lstrip("\n").startswith("<") or size == 1 else 0

    def _emit(self, out, kind: str, text: str) -> None:
        if self.strip_newline and text:
            text = text.removeprefix("\n")
            self.strip_newline = False
        if text:
            out.append((kind, text))

    def _step(self, out) -> bool:
        """Consume what the current state can; False when more input is needed."""
        return getattr(self, f"_{self.state}")(out)

    def _open(self, opener: str) -> None:
        self.buffer = self.buffer.lstrip()[len(opener):]
        self.state = OPENERS[opener]
        self.strip_newline = True

    def _start(self, out) -> bool:
        return self._expect_openers((THINK_OPEN, ANSWER_OPEN))

    def _gap(self, out) -> bool:
        return self._expect_openers((ANSWER_OPEN,))

    def _expect_openers(self, openers) -> bool:
        head = self.buffer.lstrip()
        if not head:
            return False
        for opener in openers:
            if head.startswith(opener):
                self._open(opener)
                return True
        if any(opener.startswith(head) for opener in openers):
            return False
        if self.state == "gap":
            self.buffer = head  # text after </think> without <answer>: content, minus the format's whitespace
        self.state = "answer"
        return True

    def _think(self, out) -> bool:
        return self._section(out, "reasoning", THINK_CLOSE, THINK_ENDS, "gap")

    def _answer(self, out) -> bool:
        return self._section(out, "content", ANSWER_CLOSE, ANSWER_ENDS, "done")

    def _section(self, out, kind: str, closer: str, ends, next_state: str) -> bool:
        index = self.buffer.find(closer)
        if index >= 0:
            self._emit(out, kind, self.buffer[:index].removesuffix("\n"))
            self.buffer, self.state = self.buffer[index + len(closer):], next_state
            return True
        keep = held_suffix(self.buffer, ends)
        self._emit(out, kind, self.buffer[:len(self.buffer) - keep])
        self.buffer = self.buffer[len(self.buffer) - keep:]
        return False

    def _done(self, out) -> bool:
        self.buffer = ""  # anything after </answer> is dropped, as vLLM's parser does
        return False


class _Content:
    """Content pieces -> ("content", text) and ("tool_call", {"name", "arguments"}) events."""

    def __init__(self):
        self.state = "lead"
        self.buffer = ""
        self.pending_space = ""
        self.calls = 0

    def feed(self, text: str) -> list[tuple[str, object]]:
        self.buffer += text
        out: list[tuple[str, object]] = []
        while self.buffer and getattr(self, f"_{self.state}")(out):
            pass
        return out

    def finish(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        rest, self.buffer = self.buffer, ""
        if self.state == "tools":
            rest = TOOLS_OPEN + rest  # the stream was cut inside the block: keep the raw text
        if rest.strip():
            self._text(out, rest)
        self.pending_space = ""
        return out

    def _text(self, out, text: str) -> None:
        """Emit content, holding trailing whitespace back until more text proves it is not trailing."""
        body = text.rstrip()
        if body:
            out.append(("content", self.pending_space + body))
            self.pending_space = ""
        self.pending_space += text[len(body):]

    def _lead(self, out) -> bool:
        head = self.buffer.lstrip()
        if not head or (ASSISTANT_PREFIX.startswith(head) and head != ASSISTANT_PREFIX):
            return False
        if head.startswith(ASSISTANT_PREFIX):
            self.buffer = head[len(ASSISTANT_PREFIX):]
        self.state = "plain"
        return True

    def _plain(self, out) -> bool:
        index = self.buffer.find(TOOLS_OPEN)
        if index >= 0:
            self._text(out, self.buffer[:index])
            self.buffer, self.state = self.buffer[index + len(TOOLS_OPEN):], "tools"
            return True
        keep = held_suffix(self.buffer, (TOOLS_OPEN,))
        self._text(out, self.buffer[:len(self.buffer) - keep])
        self.buffer = self.buffer[len(self.buffer) - keep:]
        return False

    def _tools(self, out) -> bool:
        index = self.buffer.find(TOOLS_CLOSE)
        if index < 0:
            return False
        payload, self.buffer = self.buffer[:index], self.buffer[index + len(TOOLS_CLOSE):]
        calls = tool_calls_from_json(payload)
        if calls is None:
            self._text(out, TOOLS_OPEN + payload + TOOLS_CLOSE)
        else:
            self.pending_space = ""
            out.extend(("tool_call", call) for call in calls)
            self.calls += len(calls)
        self.state = "plain"
        return True


class HunyuanParser:
    """One choice's output stream. `feed(text)` and `finish()` return events:
    ("reasoning", str), ("content", str) or ("tool_call", {"name": str, "arguments": JSON str})."""

    def __init__(self):
        self._sections = _Sections()
        self._content = _Content()

    @property
    def tool_calls(self) -> int:
        return self._content.calls

    def feed(self, text: str) -> list[tuple[str, object]]:
        return self._route(self._sections.feed(text))

    def finish(self) -> list[tuple[str, object]]:
        return self._route(self._sections.finish()) + self._content.finish()

    def _route(self, pieces) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for kind, text in pieces:
            if kind == "reasoning":
                out.append((kind, text))
            else:
                out.extend(self._content.feed(text))
        return out


@dataclass
class Parsed:
    reasoning: str | None = None
    content: str | None = None
    tool_calls: list[dict] = field(default_factory=list)


def collect(events, parsed: Parsed | None = None) -> Parsed:
    """Fold events into one Parsed (reasoning and content concatenated, calls in order)."""
    parsed = parsed or Parsed()
    for kind, value in events:
        if kind == "tool_call":
            parsed.tool_calls.append(value)
        else:
            setattr(parsed, kind, (getattr(parsed, kind) or "") + value)
    return parsed


def parse_text(text: str) -> Parsed:
    parser = HunyuanParser()
    return collect(parser.feed(text) + parser.finish())
