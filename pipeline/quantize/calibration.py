"""Calibration and evaluation prompts: a built-in set or a JSONL file, chat-templated with the model's own
tokenizer and template.

The built-in calibration set covers what a Hunyuan deployment sees: slow thinking (think + answer blocks),
fast thinking (`enable_thinking=False` and the `/no_think` prefix), tool definitions, tool calls and tool
results, multi-turn chats, English and Chinese, arithmetic and code. The evaluation set (used by `verify
--quantized`) is disjoint from it and holds prompts only: verify compares the tokens the model generates.
A JSONL line is {"messages": [...], "tools": [...]?, "enable_thinking": bool?} or {"text": "..."} (as is).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

MAX_TOKENS = 4096  # per sample; longer samples are truncated


@dataclass(frozen=True)
class Sample:
    messages: tuple = ()
    tools: tuple = ()
    enable_thinking: bool | None = None
    text: str | None = None


def _tool(name: str, description: str, argument: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {argument: {"type": "string"}}, "required": [argument]}}}


TOOLS = (_tool("get_weather", "Current weather in a city", "city"),
         _tool("search", "Search the web", "query"),
         _tool("get_stock_price", "Latest price of a stock", "ticker"))


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: str, call: tuple[str, dict] | None = None) -> dict:
    message = {"role": "assistant", "content": text}
    if call:
        message["tool_calls"] = [{"type": "function", "function": {"name": call[0], "arguments": call[1]}}]
    return message


def _slow(question: str, thought: str, answer: str) -> Sample:
    return Sample((_user(question), _assistant(f"<think>\n{thought}\n</think>\n<answer>\n{answer}\n</answer>")))


def _fast(question: str, answer: str, prefix: bool = False) -> Sample:
    text = f"/no_think {question}" if prefix else question
    return Sample((_user(text), _assistant(f"<answer>\n{answer}\n</answer>")), enable_thinking=None if prefix else False)


def _tool_turn(question: str, name: str, arguments: dict, result: str, answer: str) -> Sample:
    return Sample((_user(question), _assistant("", (name, arguments)),
                   {"role": "tool", "content": result}, _assistant(f"<answer>\n{answer}\n</answer>")), TOOLS)


CALIBRATION = (
    _slow("What is 17 + 25?", "17 plus 25: 7 + 5 = 12, carry 1; 1 + 2 + 1 = 4.", "42"),
    _slow("Explain why the sky is blue in two sentences.", "Rayleigh scattering grows with 1/wavelength^4.",
          "Sunlight scatters off air molecules, and short blue wavelengths scatter far more than red ones. "
          "So blue light reaches our eyes from every direction of the sky."),
    _slow("写一首关于秋天的四行短诗。", "秋天：落叶、凉风、丰收。四行，押韵。",
          "金风送爽入庭来，\n黄叶飘飘满径台。\n稻谷盈仓农户笑，\n一轮明月照心怀。"),
    _slow("Write a Python function that reverses a string.", "Slicing with a step of -1 reverses a sequence.",
          "def reverse(text: str) -> str:\n    return text[::-1]"),
    _slow("If a train travels 120 km in 1.5 hours, what is its average speed?", "120 / 1.5 = 80.", "80 km/h"),
    _slow("列出三种常见的排序算法并比较它们的时间复杂度。", "快速排序、归并排序、冒泡排序。",
          "快速排序平均 O(n log n)，归并排序 O(n log n)，冒泡排序 O(n^2)。"),
    _fast("What is the capital of Australia?", "Canberra."),
    _fast("Translate 'good morning' into French.", "Bonjour."),
    _fast("What is 9 times 8?", "72", prefix=True),
    _fast("用一句话介绍长城。", "长城是中国古代为防御北方游牧民族而修建的巨大军事工程。", prefix=True),
    _fast("Summarise the plot of Romeo and Juliet in one sentence.",
          "Two young lovers from feuding families marry in secret and die through a chain of misunderstandings."),
    _fast("Give me a SQL query that counts rows in the table users.", "SELECT COUNT(*) FROM users;"),
    _tool_turn("What's the weather in Paris right now?", "get_weather", {"city": "Paris"},
               '{"temperature_c": 18, "condition": "cloudy"}', "It is 18 °C and cloudy in Paris."),
    _tool_turn("Search for the latest news about renewable energy.", "search", {"query": "renewable energy news"},
               '{"results": ["Solar capacity hits a record", "New offshore wind farm opens"]}',
               "Top stories: solar capacity hit a record, and a new offshore wind farm opened."),
    _tool_turn("腾讯现在的股价是多少？", "get_stock_price", {"ticker": "0700.HK"}, '{"price": 398.2}',
               "腾讯（0700.HK）最新股价为 398.2 港元。"),
    Sample((_user("Hi! Can you help me plan a trip?"), _assistant("<answer>\nOf course. Where to?\n</answer>"),
            _user("Kyoto, for three days in spring."),
            _assistant("<think>\nCherry blossoms, temples, day trip to Nara.\n</think>\n<answer>\nDay 1: Higashiyama "
                       "and Kiyomizu-dera. Day 2: Arashiyama. Day 3: a day trip to Nara.\n</answer>"))),
    Sample(({"role": "system", "content": "You are a concise assistant."}, _user("Define entropy."),
            _assistant("<answer>\nA measure of uncertainty or disorder in a system.\n</answer>")), enable_thinking=False),
    Sample((_user("What is 35 + 14?"),), TOOLS),
)

EVAL_TOOLS = (_tool("get_weather", "Current weather for a city", "city"),
              _tool("get_time", "Local time in a city", "city"),
              _tool("search_web", "Search the web", "query"),
              _tool("get_stock_price", "Latest price of a stock ticker", "symbol"))


def _ask(text: str, thinking: bool | None = None, tools: tuple = ()) -> Sample:
    return Sample((_user(text),), tools, thinking)


# Generation prompts (no answer): verify compares the tokens the model generates from them.
EVALUATION = (
    _ask("What is 23 + 19?"), _ask("Add 31 and 8.", False), _ask("/no_think How much is 12 plus 27?"),
    _ask("Compute 45 plus 3."), _ask("What is 16+25?", False), _ask("/think 38+11=?"),
    _ask("What is 7 + 40?", tools=EVAL_TOOLS), _ask("How much is 29 plus 14?", False, EVAL_TOOLS),
    _ask("What is the weather in Tokyo?", tools=EVAL_TOOLS), _ask("Weather in Oslo today?", False, EVAL_TOOLS),
    _ask("What time is it in Cairo?", tools=EVAL_TOOLS), _ask("/no_think Current time in Madrid?", tools=EVAL_TOOLS),
    _ask("What is the stock price of NVDA?", tools=EVAL_TOOLS), _ask("Quote for MSFT?", False, EVAL_TOOLS),
    _ask("Search the web for solar panels.", tools=EVAL_TOOLS), _ask("Find pages about jazz history.", False, EVAL_TOOLS),
)


def read_jsonl(path: Path) -> tuple[Sample, ...]:
    """Samples from a JSONL file; a bad line is a one-line error naming file and line."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise PipelineError(f"--calib-file {path}: cannot read ({error.strerror})") from None
    samples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise PipelineError(f"{where}: not valid JSON ({error.msg})") from None
        samples.append(_sample(record, where))
    if not samples:
        raise PipelineError(f"--calib-file {path}: no samples; expected JSONL lines with 'messages' or 'text'")
    return tuple(samples)


def _sample(record, where: str) -> Sample:
    if isinstance(record, dict) and isinstance(record.get("text"), str):
        return Sample(text=record["text"])
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise PipelineError(f"{where}: expected an object with 'messages' (a non-empty list of {{'role', "
                            "'content'}} objects) or 'text' (a string)")
    tools = record.get("tools") or ()
    thinking = record.get("enable_thinking")
    if not isinstance(tools, list | tuple) or (thinking is not None and not isinstance(thinking, bool)):
        raise PipelineError(f"{where}: 'tools' must be a list and 'enable_thinking' a boolean")
    return Sample(tuple(messages), tuple(tools), thinking)


def select(samples: tuple[Sample, ...], size: int | None, where: str) -> tuple[Sample, ...]:
    if size is None:
        return samples
    if not 1 <= size <= len(samples):
        raise PipelineError(f"--calib-size: expected 1..{len(samples)} (the samples in {where}), got {size}")
    return samples[:size]


def load_tokenizer(model_dir: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise PipelineError(f"{model_dir}: no usable tokenizer ({str(error).splitlines()[0]}); calibration "
                            "chat-templates its prompts with the model's tokenizer (add --trust-remote-code for "
                            "Tencent's HYTokenizer)") from None


def render(sample: Sample, tokenizer) -> str:
    if sample.text is not None:
        return sample.text
    kwargs = {} if sample.enable_thinking is None else {"enable_thinking": sample.enable_thinking}
    return tokenizer.apply_chat_template([dict(m) for m in sample.messages], tools=list(sample.tools) or None,
                                         tokenize=False, **kwargs)


def token_ids(samples: tuple[Sample, ...], tokenizer) -> list[list[int]]:
    return [tokenizer(render(sample, tokenizer), add_special_tokens=False)["input_ids"][:MAX_TOKENS]
            for sample in samples]


def describe(ids: list[list[int]], where: str) -> dict:
    """For the manifest: where the prompts came from, how many, and a digest of the exact token ids."""
    digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
    return {"prompts": where, "samples": len(ids), "tokens": sum(len(x) for x in ids), "token_ids_sha256": digest}
