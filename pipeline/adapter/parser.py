"""Hunyuan raw output -> reasoning, content and tool calls, as a streaming state machine.

Format (Tencent's README and agent guide):
    slow thinking   <think>\\n{reasoning}\\n</think>\\n<answer>\\n{answer}\\n</answer>
    fast thinking   <answer>\\n{answer}\\n</answer>   (the prompt already ends with an empty think block)
    tool use        {answer} holds <tool_calls>[{"name": ..., "arguments": {...}}, ...]</tool_calls>
    plain text      anything else is content; a leading "助手：" (a chat-template artefact) is dropped.

Two layers, both fed text in arbitrary pieces (tags may be split across pieces):
  `_Sections` splits the stream into reasoning and content, dropping the think/answer tags and the single
  newline that the format puts inside each tag pair. A `<tool_calls>` inside an unclosed think block ends
  the reasoning there (as SGLang's Hunyuan detector does), so the call is not lost in the reasoning;
  `_Content` strips the template prefix, cuts `<tool_calls>` blocks out of the content and turns them into
  calls, and holds trailing whitespace back, so the spacing around a tool call never leaks as content and
  content never ends in whitespace.

Markup never reaches the client: text that may still become a tag is held back while the stream runs and
dropped if the stream ends there (a cut `<thin`, `\\n</ans`, `<tool_` ...). A tool block that yields no
accepted call (unparseable JSON, a call the request does not allow, a block cut before its JSON is
complete) is dropped whole. `parse_text` runs the same machine over a whole text, so streamed and
non-streamed results agree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TOOLS_OPEN, TOOLS_CLOSE = "<tool_calls>", "</tool_calls>"
ASSISTANT_PREFIX = "助手："
OPENERS = {THINK_OPEN: "think", ANSWER_OPEN: "answer"}
# markers each section ends at, in the order they are searched; each may arrive split over pieces
THINK_ENDS = ("\n" + THINK_CLOSE, THINK_CLOSE, "\n" + TOOLS_OPEN, TOOLS_OPEN)
ANSWER_ENDS = ("\n" + ANSWER_CLOSE, ANSWER_CLOSE)

Accept = Callable[[dict], bool]


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


def _arguments(value) -> str | None:
    """A call's arguments as a JSON-object string, or None when they are not a JSON object.

    Objects are serialised as vLLM's hunyuan_a13b parser does (json.dumps, non-ASCII kept); a string that
    holds a JSON object is passed on as written; a missing or null value means no arguments ("{}").
    """
    if value is None:
        return "{}"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        try:
            return value if isinstance(json.loads(value), dict) else None
        except ValueError:
            return None
    return None


def tool_calls_from_json(payload: str) -> list[dict]:
    """`[{"name": ..., "arguments": ...}]` (or one such object) -> [{"name", "arguments" (JSON string)}].

    Entries without a string name or with arguments that are not a JSON object are left out.
    """
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return []
    items = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        arguments = _arguments(item.get("arguments"))
        if arguments is not None:
            calls.append({"name": item["name"], "arguments": arguments})
    return calls


class _Sections:
    """Raw text -> ("reasoning" | "content", text) pieces; tags and their inner newlines removed."""

    def __init__(self):
        self.state = "start"
        self.buffer = ""
        self.strip_newline = False  # drop one "\n" right after an opening tag

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buffer += text
        out: list[tuple[str, str]] = []
        while self.buffer and getattr(self, f"_{self.state}")(out):
            pass
        return out

    def finish(self) -> list[tuple[str, str]]:
        """End of output: what is still held is a cut tag (or the format's newline before one); drop it,
        except in front of the first tag, where text that cannot become a tag is plain content."""
        out: list[tuple[str, str]] = []
        rest, self.buffer = self.buffer, ""
        if self.state in ("start", "gap") and not _opener_prefix(rest.lstrip(), OPENERS):
            self._emit(out, "content", rest.strip() and rest)
        self.state = "done"
        return out

    def _emit(self, out, kind: str, text: str) -> None:
        if self.strip_newline and text:
            text = text.removeprefix("\n")
            self.strip_newline = False
        if text:
            out.append((kind, text))

    def _start(self, out) -> bool:
        return self._expect_openers(OPENERS)

    def _gap(self, out) -> bool:
        return self._expect_openers({ANSWER_OPEN: "answer"})

    def _expect_openers(self, openers: dict) -> bool:
        head = self.buffer.lstrip()
        if not head:
            return False
        for opener, state in openers.items():
            if size := _opener_size(head, opener):
                self.buffer, self.state, self.strip_newline = head[size:], state, True
                return True
        if _opener_prefix(head, openers):
            return False
        if self.state == "gap":
            self.buffer = head  # text after </think> without <answer>: content, minus the format's whitespace
        self.state = "answer"
        return True

    def _think(self, out) -> bool:
        hits = [(index, marker) for marker in (THINK_CLOSE, TOOLS_OPEN) if (index := self.buffer.find(marker)) >= 0]
        if not hits:
            return self._hold(out, "reasoning", THINK_ENDS)
        index, marker = min(hits)
        self._emit(out, "reasoning", self.buffer[:index].removesuffix("\n"))
        if marker == THINK_CLOSE:
            self.buffer, self.state = self.buffer[index + len(marker):], "gap"
        else:  # a tool call ends an unclosed think block; the call itself is the answer's
            self.buffer, self.state, self.strip_newline = self.buffer[index:], "answer", False
        return True

    def _answer(self, out) -> bool:
        index = self.buffer.find(ANSWER_CLOSE)
        if index < 0:
            return self._hold(out, "content", ANSWER_ENDS)
        self._emit(out, "content", self.buffer[:index].removesuffix("\n"))
        self.buffer, self.state = self.buffer[index + len(ANSWER_CLOSE):], "done"
        return True

    def _hold(self, out, kind: str, ends) -> bool:
        """Emit all but a suffix that may still become one of `ends`; False: more input is needed."""
        keep = held_suffix(self.buffer, ends)
        self._emit(out, kind, self.buffer[:len(self.buffer) - keep])
        self.buffer = self.buffer[len(self.buffer) - keep:]
        return False

    def _done(self, out) -> bool:
        self.buffer = ""  # anything after </answer> is dropped, as vLLM's parser does
        return False


def _opener_size(head: str, opener: str) -> int:
    """Characters of `head` taken by `opener`, also when the model left out its ">" ("<answer Paris"):
    then the tag name and the whitespace after it. 0 when `head` does not open with it."""
    if head.startswith(opener):
        return len(opener)
    name = opener[:-1]
    return len(name) + 1 if head.startswith(name) and head[len(name):len(name) + 1].isspace() else 0


def _opener_prefix(head: str, openers) -> bool:
    """True when `head` is a proper prefix of an opening tag (it may still become one)."""
    return any(opener.startswith(head) and opener != head for opener in openers)


class _Content:
    """Content pieces -> ("content", text) and ("tool_call", {"name", "arguments"}) events."""

    def __init__(self, accept: Accept):
        self.accept = accept
        self.state = "lead"
        self.buffer = ""
        self.pending_space = ""
        self.after_calls = False  # drop the whitespace between a tool block and the text after it
        self.calls = 0

    def feed(self, text: str) -> list[tuple[str, object]]:
        self.buffer += text
        out: list[tuple[str, object]] = []
        while self.buffer and getattr(self, f"_{self.state}")(out):
            pass
        return out

    def finish(self) -> list[tuple[str, object]]:
        """End of output: a cut tool block still yields its calls if its JSON is complete; a held tag prefix,
        a half-arrived template prefix and trailing whitespace are dropped."""
        out: list[tuple[str, object]] = []
        if self.state == "tools":
            payload = self.buffer[:len(self.buffer) - held_suffix(self.buffer, (TOOLS_CLOSE,))]
            self._calls(out, payload)
        self.buffer, self.pending_space = "", ""
        return out

    def _text(self, out, text: str) -> None:
        """Emit content, holding trailing whitespace back until more text proves it is not trailing."""
        if self.after_calls:
            text = text.lstrip()
            self.after_calls = not text
        body = text.rstrip()
        if body:
            out.append(("content", self.pending_space + body))
            self.pending_space = ""
        self.pending_space += text[len(body):]

    def _lead(self, out) -> bool:
        head = self.buffer.lstrip()
        if not head or (ASSISTANT_PREFIX.startswith(head) and head != ASSISTANT_PREFIX):
            return False
        self.buffer = head.removeprefix(ASSISTANT_PREFIX)
        self.state = "plain"
        return True

    def _plain(self, out) -> bool:
        index = self.buffer.find(TOOLS_OPEN)
        if index >= 0:
            self._text(out, self.buffer[:index])
            self.buffer, self.state = self.buffer[index + len(TOOLS_OPEN):], "tools"
            self.pending_space = ""
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
        self._calls(out, payload)
        self.state, self.after_calls = "plain", True
        return True

    def _calls(self, out, payload: str) -> None:
        calls = [call for call in tool_calls_from_json(payload) if self.accept(call)]
        out.extend(("tool_call", call) for call in calls)
        self.calls += len(calls)


def accept_all(call: dict) -> bool:
    return True


class HunyuanParser:
    """One choice's output stream. `feed(text)` and `finish()` return events:
    ("reasoning", str), ("content", str) or ("tool_call", {"name": str, "arguments": JSON str}).
    `accept(call)` decides which parsed calls are returned (the request's tools and tool_choice)."""

    def __init__(self, accept: Accept = accept_all):
        self._sections = _Sections()
        self._content = _Content(accept)

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


def parse_text(text: str, accept: Accept = accept_all) -> Parsed:
    parser = HunyuanParser(accept)
    return collect(parser.feed(text) + parser.finish())
