"""A whole conversation within the budget (pure): the current user message goes through
`prepare`; the turns before it are fitted around what it needs. Over the budget, the older
turns give way first, oldest first: their code blocks become outlines (what the current
instruction names is kept, the rest is a one-line note naming what was left out), then whole
exchanges (a user message and the answers after it) are dropped; only when every older
exchange is gone is the current message's code cut, as for a single message. The current
instruction is never cut. System messages, and anything after the current message, are sent
as they are.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .assemble import render_block
from .budget import TokenCounter, estimate_tokens
from .chunk import chunk
from .config import PipelineConfig
from .errors import OverBudget
from .extract import Instruction, extract
from .language import canonical
from .prepare import OlderTurns, Prepared, prepare
from .rank import protected, resolve_named
from .segment import fences, segment

Message = dict[str, Any]
# Tokens a chat template adds around each message (ChatML: <|im_start|>, the role, a newline,
# <|im_end|>, a newline); the current message's are in the caller's template margin.
PER_MESSAGE = 6
_FIXED_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True)
class History:
    """The messages before the current one as they are sent, and what was done to them."""

    messages: tuple[Message, ...]
    tokens: int  # estimated, chat template included
    older: OlderTurns
    changed: bool


def message_tokens(messages: Sequence[Message], count_tokens: TokenCounter) -> int:
    """Estimated tokens of whole messages, the chat template's per-message cost included."""
    return sum(count_tokens(m["content"]) + PER_MESSAGE for m in messages)


def current_index(messages: Sequence[Message]) -> int:
    """Where the current user message (the last one) is."""
    return max(i for i, m in enumerate(messages) if m["role"] == "user")


def prepare_chat(messages: Sequence[Message], cfg: PipelineConfig, *,
                 language: str | None = None, count_tokens: TokenCounter = estimate_tokens,
                 budget_tokens: int | None = None, mode: Literal["auto", "raw"] = "auto",
                 clock: Callable[[], float] = time.perf_counter) -> Prepared:
    """The current user message prepared, and the messages before it fitted, so that the
    whole conversation fits `budget_tokens` (the current message's template excluded)."""
    started = clock()
    last = current_index(messages)
    before, after = messages[:last], messages[last + 1:]
    text = messages[last]["content"]
    after_tokens = message_tokens(after, count_tokens)
    unchanged = as_sent(before, count_tokens)

    def run(budget: int | None, how: Literal["auto", "raw"]) -> Prepared:
        return prepare(text, cfg, language=language, count_tokens=count_tokens,
                       budget_tokens=budget, mode=how, clock=clock)

    def done(prepared: Prepared, history: History) -> Prepared:
        return dataclasses.replace(
            prepared, history=history.messages if history.changed else None,
            context_tokens=history.tokens + after_tokens, older_turns=history.older,
            pipeline_ms=(clock() - started) * 1000)

    if budget_tokens is None:
        return done(run(None, mode), unchanged)
    if mode == "raw":  # sent as it is: the whole conversation fits, or it is refused
        prepared = run(None, "raw")
        total = count_tokens(prepared.prompt) + unchanged.tokens + after_tokens
        if total > budget_tokens:
            raise OverBudget(total, budget_tokens, what="the conversation, sent as it is,")
        return done(prepared, unchanged)
    natural = run(None, "auto")
    room = budget_tokens - after_tokens - count_tokens(natural.prompt)  # as the planner counts
    if unchanged.tokens <= room:
        return done(natural, unchanged)
    found = extract(segment(text))
    if found is not None:  # its TODO comments point into the current message's code only
        found = dataclasses.replace(found, directives=tuple(
            d for d in found.directives if d.source == "prose"))
    history = fit_history(before, room, count_tokens,
                          lambda content: outline(content, found, cfg))
    if history.tokens <= room:
        return done(natural, history)
    # Every older exchange is gone: the current message's code is cut, as for one message.
    return done(run(budget_tokens - after_tokens - history.tokens, "auto"), history)


def as_sent(before: Sequence[Message], count_tokens: TokenCounter) -> History:
    """The messages before the current one, unchanged."""
    tokens = message_tokens(before, count_tokens)
    turns = len(_exchanges(before))
    older_tokens = sum(message_tokens([before[i] for i in ex], count_tokens)
                       for ex in _exchanges(before))
    return History(tuple(before), tokens, OlderTurns(turns, turns, 0, 0, older_tokens,
                                                     older_tokens), changed=False)


def fit_history(before: Sequence[Message], room: int, count_tokens: TokenCounter,
                reduce: Callable[[str], str]) -> History:
    """The messages before the current one within `room` tokens, if it can be done: each
    exchange's code reduced (`reduce`), oldest first, until they fit; then whole exchanges
    dropped, oldest first. Messages of no exchange (system) are always kept."""
    contents = [m["content"] for m in before]
    costs = [count_tokens(c) + PER_MESSAGE for c in contents]
    exchanges = _exchanges(before)
    original = sum(costs[i] for ex in exchanges for i in ex)
    state = ["kept"] * len(exchanges)
    total = sum(costs)
    for n, ex in enumerate(exchanges):
        if total <= room:
            break
        for i in ex:
            reduced = reduce(contents[i])
            if reduced != contents[i]:
                contents[i] = reduced
                cost = count_tokens(reduced) + PER_MESSAGE
                total += cost - costs[i]
                costs[i] = cost
                state[n] = "reduced"
    gone: set[int] = set()
    for n, ex in enumerate(exchanges):
        if total <= room:
            break
        total -= sum(costs[i] for i in ex)
        gone.update(ex)
        state[n] = "dropped"
    messages = tuple(m if m["content"] == contents[i] else {**m, "content": contents[i]}
                     for i, m in enumerate(before) if i not in gone)
    older = OlderTurns(len(exchanges), state.count("kept"), state.count("reduced"),
                       state.count("dropped"), original,
                       sum(costs[i] for ex in exchanges for i in ex if i not in gone))
    return History(messages, total, older, changed=state.count("kept") < len(exchanges))


def outline(content: str, instruction: Instruction | None, cfg: PipelineConfig) -> str:
    """A message with each fenced code block cut to what `instruction` names, a one-line
    note standing for the rest (`# … 3 functions omitted: load, save, +1 more …`); the
    fence's info string (language, file name) and the prose are kept."""
    out: list[str] = []
    pos = 0
    whole = dataclasses.replace(cfg, chunk_threshold=0)  # split even small blocks by syntax
    for start, end, body, info in fences(content):
        if not body.strip():
            continue
        tag = info.split()[0] if info else None
        chunks = chunk(body, canonical(tag), whole)
        kept: set[int] = set()
        if instruction is not None:
            kept = protected(chunks, instruction, resolve_named(instruction, chunks))
            kept |= {n for c in chunks if c.index in kept for n in c.needs}
        code = render_block(body, chunks, kept, {}, {c.index: c.name for c in chunks}, tag)
        opener = content[start:content.index("\n", start)]  # indent, fence, info string
        mark = opener.lstrip(" \t")
        fence = mark[: len(mark) - len(mark.lstrip(mark[0]))]
        reduced = f"{opener}\n{code}\n{opener[: len(opener) - len(mark)]}{fence}"
        if len(reduced) < end - start:  # a block already as short as its note stays
            out.append(content[pos:start])
            out.append(reduced)
            pos = end
    out.append(content[pos:])
    return "".join(out)


def _exchanges(before: Sequence[Message]) -> list[list[int]]:
    """Indices of each exchange: a user message and the messages after it up to the next
    user message; system and developer messages belong to none (they are always sent)."""
    out: list[list[int]] = []
    for i, m in enumerate(before):
        if m["role"] in _FIXED_ROLES:
            continue
        if m["role"] == "user" or not out:
            out.append([i])
        else:
            out[-1].append(i)
    return out
