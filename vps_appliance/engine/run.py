"""Running one internal request (`cerebrum.generation`) on a model slot: its prompt tokens,
sampling, drafting and output controls, and the generation as internal events.

`prepare` (a conversation or a prompt) and `prepare_fill` (fill in the middle, or a prompt
the client rendered) turn a request into a `Prepared` generation; `events` runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from cerebrum.generation.events import Event, KeepAlive
from cerebrum.generation.request import Fill, Request

from ..errors import BadRequest
from ..settings import ModelSpec
from . import chat, fim, fim_service, sampling, structured, tools
from .answer import Answer
from .decoding.job import Control
from .params import GenerationParams, completion_budget, params_of
from .prompt_cache import common_prefix
from .sampling import SamplerSpec
from .slots import LoadedModel, ModelSlot
from .speculative import DraftConfig


@dataclass(frozen=True)
class Prepared:
    """A generation ready to run: its tokens, sampling, length, stops and controls."""

    tokens: list[int]
    params: GenerationParams
    max_tokens: int
    control: Control
    stops: tuple[str, ...] = ()
    tooling: tools.Tooling = field(default_factory=tools.Tooling)
    with_logprobs: bool = False
    cut: fim.Cut | None = None  # fill in the middle: what was cut to fit


def drafting(spec: ModelSpec, requested: bool | None, prediction: bool) -> DraftConfig:
    """Whether and how to draft: the request's `speculative` wins, a `prediction` asks for it,
    else the model's `speculative` setting."""
    if requested is False and prediction:
        raise BadRequest("'prediction' needs speculative decoding, which the request turns off "
                         "with \"speculative\": false; send one or the other",
                         param="prediction")
    enabled = requested if requested is not None else (
        prediction or spec.speculative != "off")
    return DraftConfig(enabled=enabled, exact=spec.speculative == "exact",
                       draft_min=spec.draft_min, draft_max=spec.draft_max)


async def _with_drafting(control: Control, model: LoadedModel, spec: ModelSpec,
                         requested: bool | None, prediction: str) -> Control:
    config = drafting(spec, requested, bool(prediction))
    tokens: list[int] = []
    if prediction:
        tokens = await asyncio.to_thread(chat.text_tokens, model.llm, prediction)
    return dataclasses.replace(control, drafting=config, prediction=tuple(tokens))


def _tooling(req: Request, model: LoadedModel, name: str) -> tools.Tooling:
    """The request's tools; a 400 where the model's chat template cannot render them."""
    tooling = tools.Tooling.of(req)
    if tooling.active and not model.tools:
        raise BadRequest(f"model {name!r} does not support tools: its chat template does not "
                         "render them", param="tools", code="tools_unsupported")
    return tooling


async def _with_options(control: Control, model: LoadedModel, req: Request, max_n: int,
                        tooling: tools.Tooling) -> Control:
    """The request's generation options: logit_bias, penalties, the answer's shape (or a
    forced tool call's grammar), logprobs, n."""
    if req.n > max_n:
        raise BadRequest(f"'n' must be at most {max_n} on this server (max_n), got {req.n}",
                         param="n")
    if req.output.type != "text" and tooling.active:
        raise BadRequest("'response_format' together with tools is not supported: send "
                         "tool_choice \"none\", or no response_format", param="response_format")
    grammar = await asyncio.to_thread(structured.grammar, req.output) \
        if req.output.type != "text" else await asyncio.to_thread(tooling.grammar)
    s = req.sampling
    samplers = sampling.with_request(
        control.samplers, model.llm.n_vocab(), logit_bias=s.logit_bias,
        presence_penalty=s.presence_penalty, frequency_penalty=s.frequency_penalty,
        grammar=grammar)
    return dataclasses.replace(control, samplers=samplers, n=req.n,
                               top_logprobs=req.top_logprobs if req.logprobs else None,
                               repeated_calls_end=tooling.active)


def stable_prefix(model: LoadedModel, messages: list[dict], template_tools: list | None,
                  tokens: list[int]) -> int:
    """How many of a conversation's prompt tokens are its stable prefix: the system
    messages it begins with and the tools, as the template renders them — the part the
    sessions of one agent in one project share (the date, the working directory and the
    task come later, in user messages). 0 when there is none or it cannot be rendered."""
    leading = 0
    while leading < len(messages) and messages[leading]["role"] == "system":
        leading += 1
    if leading == 0 and not template_tools:
        return 0
    try:
        alone, _ = chat.chat_tokens(model.llm, model.formatter, messages[:leading],
                                    template_tools)
    except BadRequest:  # a template that wants a user turn
        return 0
    return min(common_prefix(alone, tokens), len(tokens) - 1)


async def prepare(model: LoadedModel, spec: ModelSpec, req: Request, max_n: int, *,
                  clip: bool = False) -> Prepared:
    """A conversation or a prompt (with a suffix: fill in the middle) made ready to run.
    `clip` (the agents' formats): a length past the room the context leaves ends at the
    context's end (Claude Code asks 32,000 tokens whatever the model) instead of a 400, and
    no length (Codex sends none) is all of that room, not the model's default."""
    params = params_of(req.sampling, req.max_tokens, req.stop, spec.sampling)
    tooling = _tooling(req, model, spec.name)
    control, stops, cut = Control(), (), None
    if req.suffix is not None:  # fill in the middle (Continue's autocomplete)
        fill = await asyncio.to_thread(fim_service.prepare, model, spec, params,
                                       prefix=req.prompt, suffix=req.suffix)
        tokens, control, max_tokens = fill.tokens, fill.control, fill.max_tokens
        cut = fill.cut
    else:
        if req.kind == "chat":
            messages = tools.template_messages(req.turns, frozenset(
                t.name for t in req.tools if t.freeform))
            offered = tooling.template_tools()
            tokens, stops = await asyncio.to_thread(
                chat.chat_tokens, model.llm, model.formatter, messages, offered)
            if model.disk is not None:
                control = dataclasses.replace(control, prefix=await asyncio.to_thread(
                    stable_prefix, model, messages, offered, tokens))
        else:
            tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, req.prompt)
        requested = params.max_tokens
        if clip:  # asked for or not, up to the context's end (llama-server's n_predict -1)
            room = model.n_ctx - len(tokens)
            requested = max(1, room if requested is None else min(requested, room))
        max_tokens = completion_budget(len(tokens), requested, spec.sampling.max_tokens,
                                       model.n_ctx)
    control = await _with_drafting(control, model, spec, req.speculative, req.prediction)
    control = await _with_options(control, model, req, max_n, tooling)
    return Prepared(tokens, params, max_tokens, control, tuple(stops), tooling,
                    req.logprobs, cut)


async def count(model: LoadedModel, spec: ModelSpec, req: Request) -> int:
    """The prompt tokens of a conversation, as the model would see them (tools included)."""
    tooling = _tooling(req, model, spec.name)
    tokens, _ = await asyncio.to_thread(
        chat.chat_tokens, model.llm, model.formatter,
        tools.template_messages(req.turns, frozenset(t.name for t in req.tools if t.freeform)),
        tooling.template_tools())
    return len(tokens)


def _samplers(fill: Fill) -> SamplerSpec:
    c, s = fill.controls, fill.sampling
    return SamplerSpec(
        **({"order": c.samplers} if c.samplers is not None else {}),
        typical_p=c.typical_p, repeat_last_n=c.repeat_last_n,
        presence_penalty=s.presence_penalty or 0.0,
        frequency_penalty=s.frequency_penalty or 0.0)


async def prepare_fill(model: LoadedModel, spec: ModelSpec, fill: Fill) -> Prepared:
    """Fill in the middle with the editor's chunks, or (`rendered`) the client's own prompt
    as it is, special tokens parsed, as llama-server does."""
    params = params_of(fill.sampling, fill.max_tokens, fill.stop, spec.sampling)
    c = fill.controls
    if fill.rendered:
        tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, fill.prompt)
        # As llama-server does with its own format: a length past the context's room ends
        # at the context's end (stop_type "limit"); Continue sends 4096 by default.
        room = model.n_ctx - len(tokens)
        requested = None if params.max_tokens is None else min(params.max_tokens, room)
        max_tokens = completion_budget(len(tokens), requested, spec.sampling.max_tokens,
                                       model.n_ctx)
        control, cut = Control(samplers=_samplers(fill).for_context(model.n_ctx),
                               n_indent=c.n_indent, t_max_predict_ms=c.t_max_predict_ms,
                               cache_prompt=c.cache_prompt, interactive=True), None
    else:
        prepared = await asyncio.to_thread(
            fim_service.prepare, model, spec, params, prefix=fill.prefix, suffix=fill.suffix,
            prompt=fill.prompt, samplers=_samplers(fill),
            extra=tuple((name or "tmp", text) for name, text in fill.extra),  # llama-server's
            n_indent=c.n_indent, t_max_predict_ms=c.t_max_predict_ms,
            cache_prompt=c.cache_prompt)
        tokens, max_tokens, control = prepared.tokens, prepared.max_tokens, prepared.control
        cut = prepared.cut
    control = await _with_drafting(control, model, spec, None, "")
    return Prepared(tokens, params, max_tokens, control, cut=cut)


async def events(slot: ModelSlot, prepared: Prepared) -> AsyncIterator[Event]:
    """Run a prepared generation: its events, at least one per engine step (`KeepAlive`
    while tool-call text is held back), so the first comes with the first token."""
    answer = Answer(prepared.tooling, prepared.with_logprobs)
    async with aclosing(slot.generate(prepared.tokens, prepared.params, prepared.max_tokens,
                                      prepared.stops, prepared.control)) as steps:
        async for step in steps:
            out = answer.events(step)
            for event in out or [KeepAlive()]:
                yield event
