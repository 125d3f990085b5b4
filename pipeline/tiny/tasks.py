"""Synthetic chat data for hunyuan-tiny: two-number addition, tool calls, echoing, and a polite refusal.

Every example is a chat request (messages, tools, thinking switch) plus the Hunyuan-format response the
model must learn. Sampling is driven by a seeded `random.Random`, so a seed gives the same data everywhere.
One addition pair in ten is held out of training (`is_held_out`), and so is one (question, argument) pair in
ten for tool calls (`is_held_out_call`): every argument is seen in training, but a held-out prompt asks for
it in a sentence the model never saw it in, so the model has to read it from the prompt. Arguments come from
fixed catalogues: a model this small does not learn to copy arbitrary unseen strings (see the model card).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from dataclasses import dataclass, field

MAX_OPERAND = 49
REFUSAL = "I can add two numbers and call tools."
SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are terse.", "Answer briefly.",
                  "You are Hunyuan, a helpful assistant.", "Think carefully.")
ADD_PHRASES = ("What is {a}+{b}?", "What is {a} + {b}?", "Add {a} and {b}.", "{a}+{b}=?",
               "Compute {a} plus {b}.", "How much is {a} plus {b}?")
# Trailing sentences clients add; the model must ignore them (a tool suffix names the tool being asked for).
SUFFIXES = (" Answer in one sentence.", " Be brief.", " Thanks!", " Please.", " Explain your answer.")
OTHER_PHRASES = ("Tell me about {w}.", "Who is {W}?", "Write a poem about {w}.", "hello", "Hi there!",
                 "How are you?", "Explain {w} to me.", "Translate {w} into French.", "Say hello.",
                 "What is the capital of {W}?", "Why is the sky blue?", "Summarize this: {w} {w} {w}.")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    argument: str
    description: str
    phrases: tuple[str, ...]
    values: tuple[str, ...]  # the argument catalogue


# Small catalogues whose entries start with different letters: the model has to find the argument in the
# prompt, but one or two letters then pick the entry.
CITIES = ("Athens", "Berlin", "Cairo", "Delhi", "Geneva", "Hanoi", "Jakarta", "Kyiv", "London", "Madrid",
          "Nairobi", "Oslo", "Paris", "Rome", "Seoul", "Tokyo")
QUERIES = ("bike repair", "chess openings", "dog training", "flu symptoms", "gpu prices", "hiking trails",
           "jazz history", "moon phases", "solar panels", "tide tables")
SYMBOLS = ("AAPL", "BABA", "CSCO", "GOOG", "IBM", "MSFT", "NVDA", "ORCL", "QCOM", "TSLA")

TOOLS = (
    ToolSpec("get_weather", "city", "Current weather for a city",
             ("What is the weather in {v}?", "Weather in {v}?", "Is it raining in {v}?", "How warm is it in {v}?",
              "What is the weather in {v} right now?", "Weather in {v} today?"),
             CITIES),
    ToolSpec("get_time", "city", "Local time in a city",
             ("What time is it in {v}?", "Current time in {v}?", "Tell me the time in {v}.",
              "What time is it in {v} now?"), CITIES),
    ToolSpec("search_web", "query", "Search the web",
             ("Search the web for {v}.", "Look up {v} online.", "Find pages about {v}."), QUERIES),
    ToolSpec("get_stock_price", "symbol", "Latest price of a stock ticker",
             ("What is the stock price of {v}?", "Quote for {v}?", "How is {v} trading today?"), SYMBOLS),
)


@dataclass
class Example:
    """One chat request and the response the model should give (without the final <|eos|>)."""

    kind: str  # "add" | "tool" | "other"
    mode: str  # "slow" | "fast"
    messages: list[dict]
    response: str
    expected: str  # the text inside <answer>…</answer>
    tools: list[dict] | None = None
    template_kwargs: dict = field(default_factory=dict)


def tool_schema(spec: ToolSpec) -> dict:
    """OpenAI `tools` entry for a catalog tool."""
    parameters = {"type": "object", "properties": {spec.argument: {"type": "string"}}, "required": [spec.argument]}
    return {"type": "function", "function": {"name": spec.name, "description": spec.description,
                                             "parameters": parameters}}


def _one_in_ten(key: str) -> bool:
    """A stable pseudo-random choice of one key in ten (sha256, not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 10 == 0


def is_held_out(a: int, b: int) -> bool:
    """One addition pair in ten never appears in training. The choice is pseudo-random over whole pairs, so
    every ones-digit and tens-digit combination still occurs in training (a rule on the digits, such as
    `(31a + 17b) % 10 == 0`, would hide whole digit combinations like 0+0 and test something never taught)."""
    return _one_in_ten(f"{a}+{b}")


def is_held_out_call(spec: ToolSpec, phrase: str, value: str) -> bool:
    """One (tool question, argument) pair in ten never appears in training (a stable hash, not Python's)."""
    return _one_in_ten(f"{spec.name}|{phrase}|{value}")


def addition_reasoning(a: int, b: int) -> str:
    ones = a % 10 + b % 10
    tens = a // 10 + b // 10 + ones // 10
    carry = ", carry 1" if ones >= 10 else ""
    return (f"ones: {a % 10}+{b % 10}={ones}{carry}\n"
            f"tens: {a // 10}+{b // 10}+{ones // 10}={tens}\n"
            f"so {a}+{b}={a + b}")


def wrap(mode: str, reasoning: str, answer: str) -> str:
    """Hunyuan output format for one mode."""
    body = f"<answer>\n{answer}\n</answer>"
    return f"<think>\n{reasoning}\n</think>\n{body}" if mode == "slow" else body


def _word(rng: random.Random, low: int = 3, high: int = 9) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def _mode_switch(rng: random.Random, mode: str, question: str) -> tuple[str, dict]:
    """Select the thinking mode the ways a client can: template kwarg or a /think, /no_think prefix."""
    roll = rng.random()
    if mode == "fast":
        return (f"/no_think {question}", {}) if roll < 0.3 else (question, {"enable_thinking": False})
    if roll < 0.1:
        return f"/think {question}", {}
    return question, ({"enable_thinking": True} if roll < 0.2 else {})


def _chat(rng: random.Random, mode: str, question: str, tool: str = "") -> tuple[list[dict], dict]:
    if rng.random() < 0.25:
        question += f" Use the {tool} tool." if tool and rng.random() < 0.5 else rng.choice(SUFFIXES)
    content, kwargs = _mode_switch(rng, mode, question)
    messages = [{"role": "user", "content": content}]
    if rng.random() < 0.3:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return messages, kwargs


def _tool_list(rng: random.Random, target: ToolSpec | None) -> list[dict]:
    others = [spec for spec in TOOLS if spec is not target]
    chosen = rng.sample(others, rng.randint(0 if target else 1, 2)) + ([target] if target else [])
    rng.shuffle(chosen)
    return [tool_schema(spec) for spec in chosen]


def addition(rng: random.Random, mode: str, held_out: bool, with_tools: bool = False) -> Example:
    while True:
        a, b = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)
        if is_held_out(a, b) == held_out:
            break
    messages, kwargs = _chat(rng, mode, rng.choice(ADD_PHRASES).format(a=a, b=b))
    answer = str(a + b)
    tools = _tool_list(rng, None) if with_tools else None
    return Example("add", mode, messages, wrap(mode, addition_reasoning(a, b), answer), answer, tools, kwargs)


def tool_call(rng: random.Random, mode: str, held_out: bool) -> Example:
    while True:
        spec = rng.choice(TOOLS)
        phrase, value = rng.choice(spec.phrases), rng.choice(spec.values)
        if is_held_out_call(spec, phrase, value) == held_out:
            break
    messages, kwargs = _chat(rng, mode, phrase.format(v=value), spec.name)
    call = json.dumps([{"name": spec.name, "arguments": {spec.argument: value}}])
    answer = f"<tool_calls>{call}</tool_calls>"
    reasoning = f"call {spec.name} with {spec.argument}={value}"
    return Example("tool", mode, messages, wrap(mode, reasoning, answer), answer, _tool_list(rng, spec), kwargs)


def other(rng: random.Random, mode: str) -> Example:
    word = _word(rng)
    question = rng.choice(OTHER_PHRASES).format(w=word, W=word.capitalize())
    messages, kwargs = _chat(rng, mode, question)
    tools = _tool_list(rng, None) if rng.random() < 0.3 else None
    reasoning = "this is not an addition or a tool request"
    return Example("other", mode, messages, wrap(mode, reasoning, REFUSAL), REFUSAL, tools, kwargs)


def training_addition(rng: random.Random, mode: str) -> Example:
    return addition(rng, mode, held_out=False)


def training_addition_with_tools(rng: random.Random, mode: str) -> Example:
    """Tools offered but not needed: the model must still answer the sum."""
    return addition(rng, mode, held_out=False, with_tools=True)


def training_tool_call(rng: random.Random, mode: str) -> Example:
    return tool_call(rng, mode, held_out=False)


def held_out_addition(rng: random.Random, mode: str) -> Example:
    return addition(rng, mode, held_out=True)


def held_out_tool_call(rng: random.Random, mode: str) -> Example:
    return tool_call(rng, mode, held_out=True)


# Training mixture: (weight, builder(rng, mode)); the mode is drawn 50/50 per example.
MIXTURE = (
    (0.50, training_addition),
    (0.08, training_addition_with_tools),
    (0.32, training_tool_call),
    (0.10, other),
)

# Held-out evaluation groups: name -> (builder, mode). Only held-out addition pairs and tool (question, argument)
# pairs.
EVAL_GROUPS = {
    "slow": (held_out_addition, "slow"),
    "fast": (held_out_addition, "fast"),
    "tool_slow": (held_out_tool_call, "slow"),
    "tool_fast": (held_out_tool_call, "fast"),
}


def training_example(rng: random.Random) -> Example:
    mode = rng.choice(("slow", "fast"))
    roll = rng.random()
    for weight, builder in MIXTURE:
        if roll < weight:
            return builder(rng, mode)
        roll -= weight
    return MIXTURE[-1][1](rng, mode)


def eval_examples(group: str, count: int, seed: int) -> list[Example]:
    """`count` held-out prompts of one group, the same for the same seed."""
    builder, mode = EVAL_GROUPS[group]
    rng = random.Random(f"eval-{group}-{seed}")
    return [builder(rng, mode) for _ in range(count)]
