"""The model endpoints: OpenAI-compatible completions, llama-server's /infill, tokenize.
Imported on the first request that needs a model (runtime.py); routes.py maps the paths."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, suppress
from typing import Any

from aiohttp import web

from cerebrum.llamacpp import select_fields
from cerebrum.openai import error_body

from ..engine import chat, fim_service, sampling, structured, tools
from ..engine.slots import Control, Done, Event, Failed, LoadedModel, ModelSlot, Piece
from ..engine.speculative import DraftConfig
from ..errors import BackendError, BadRequest, ClientStalled, NotFound, PayloadTooLarge
from ..settings import ModelSpec
from ..wire.infill import (
    InfillRequest,
    generation_settings,
    parse_infill,
    parse_native_completion,
    timings,
)
from ..wire.protocol import (
    CompletionRequest,
    Envelope,
    Kind,
    Usage,
    completion_budget,
    decode_json,
    model_of,
    parse_chat,
    parse_completion,
    parse_tokenize,
    sse,
)
from ..wire.respond import Response
from .replies import json_response
from .state import CLOCK, CONTEXT, IDENTITIES, METRICS, SETTINGS, SLOTS

STREAM_BUFFER_BYTES = 64 * 1024  # per stream: the kernel's send buffer and asyncio's own


async def _body(request: web.Request) -> Any:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse before reading: a client announcing a huge body need not send it.
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    return decode_json(await request.read())


def _slot(request: web.Request, name: str | None) -> ModelSlot:
    slots = request.app[SLOTS]
    name = name or request.app[SETTINGS].models[0].name
    slot = slots.get(name)
    if slot is None:
        raise NotFound(f"model {name!r} does not exist; available: {', '.join(slots)}",
                       code="model_not_found")
    request[CONTEXT].log["model"] = name
    return slot


def _parse(kind: Kind, body: Any, slot: ModelSlot, cap: int) -> CompletionRequest:
    parse = parse_chat if kind == "chat" else parse_completion
    return parse(body, slot.spec.sampling, cap)


async def completions(request: web.Request, kind: Kind) -> web.StreamResponse:
    """POST /v1/chat/completions and /v1/completions."""
    settings = request.app[SETTINGS]
    body = await _body(request)
    slot = _slot(request, model_of(body))
    slot.check_capacity()  # shed before doing any work for the request
    req = _parse(kind, body, slot, settings.max_tokens_cap)
    model = await slot.model()
    control = None
    tooling = _tooling(req, model, slot.spec.name)
    if req.suffix is not None:  # fill in the middle (Continue's autocomplete)
        prepared = await asyncio.to_thread(fim_service.prepare, model, slot.spec, req.params,
                                           prefix=req.prompt, suffix=req.suffix)
        tokens, stops, control = prepared.tokens, (), prepared.control
        max_tokens = prepared.max_tokens
        request[CONTEXT].log["fim_cut"] = prepared.cut.any
    else:
        if kind == "chat":
            tokens, stops = await asyncio.to_thread(
                chat.chat_tokens, model.llm, model.formatter,
                tools.template_messages(req.messages), tooling.template_tools())
        else:
            tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, req.prompt)
            stops = ()
        max_tokens = completion_budget(len(tokens), req.params.max_tokens,
                                       slot.spec.sampling.max_tokens, model.n_ctx)
    control = await _with_drafting(control or Control(), model, slot.spec, req.speculative,
                                   req.prediction)
    control = await _with_options(control, model, req, settings.max_n, tooling)
    request[CONTEXT].log["prompt_tokens"] = len(tokens)
    request.app[METRICS].prompt_tokens.labels(slot.spec.name).inc(len(tokens))
    env = Envelope.new(kind, request[CONTEXT].request_id, slot.spec.name,
                       request.app[IDENTITIES][slot.spec.name].fingerprint)
    async with aclosing(slot.generate(tokens, req.params, max_tokens, stops,
                                      control)) as events:
        first = await anext(events)  # queueing and load errors still get a proper status
        _first_token(request, first)
        shape = Response(env, n=control.n, with_logprobs=req.options.logprobs,
                         prompt_chars=len(req.prompt), tool_calls=tooling.active,
                         parallel_tool_calls=tooling.parallel, tool_names=tooling.names)
        if req.stream:
            return await _stream(request, shape, first, events, req.options.include_usage)
        return await _collect(request, shape, first, events)


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


def _tooling(req: CompletionRequest, model: LoadedModel, name: str) -> tools.Tooling:
    """The request's tools; a 400 where the model's chat template cannot render them."""
    opts = req.options
    tooling = tools.Tooling.of(opts.tools, opts.tool_choice, opts.parallel_tool_calls)
    if tooling.active and not model.tools:
        raise BadRequest(f"model {name!r} does not support tools: its chat template does not "
                         "render them", param="tools", code="tools_unsupported")
    return tooling


async def _with_options(control: Control, model: LoadedModel, req: CompletionRequest,
                        max_n: int, tooling: tools.Tooling) -> Control:
    """The request's OpenAI generation options: logit_bias, penalties, response_format (or
    a forced tool call's grammar), logprobs, n."""
    opts = req.options
    if opts.n > max_n:
        raise BadRequest(f"'n' must be at most {max_n} on this server (max_n), got {opts.n}",
                         param="n")
    fmt = structured.from_wire(opts.response_format)
    if fmt.type != "text" and tooling.active:
        raise BadRequest("'response_format' together with tools is not supported: send "
                         "tool_choice \"none\", or no response_format", param="response_format")
    grammar = await asyncio.to_thread(structured.grammar, fmt) if fmt.type != "text" else \
        await asyncio.to_thread(tooling.grammar)
    samplers = sampling.with_request(
        control.samplers, model.llm.n_vocab(), logit_bias=opts.logit_bias,
        presence_penalty=opts.presence_penalty, frequency_penalty=opts.frequency_penalty,
        grammar=grammar)
    return dataclasses.replace(control, samplers=samplers, n=opts.n,
                               top_logprobs=opts.top_logprobs if opts.logprobs else None)


def _first_token(request: web.Request, event: Event) -> None:
    app = request.app
    ttft = app[CLOCK]() - request[CONTEXT].started
    app[METRICS].ttft.labels(request[CONTEXT].log["model"]).observe(ttft)
    request[CONTEXT].log["ttft_ms"] = round(ttft * 1000, 1)


def _finish(request: web.Request, usage: Usage, rate: float | None) -> None:
    request[CONTEXT].log["completion_tokens"] = usage.completion_tokens
    request[CONTEXT].log["cached_tokens"] = usage.cached_tokens
    if rate is not None:
        request[CONTEXT].log["tok_s"] = round(rate, 1)


async def _collect(request: web.Request, shape: Response, first: Event,
                   events: AsyncIterator[Event]) -> web.Response:
    event = first
    while True:
        if isinstance(event, Failed):
            raise BackendError(event.message)
        shape.collect(event)
        if isinstance(event, Done) and shape.complete:
            _finish(request, shape.usage(), event.decode_tokens_per_second)
            return json_response(shape.body())
        event = await anext(events)


async def _stream(request: web.Request, shape: Response, first: Event,
                  events: AsyncIterator[Event], include_usage: bool) -> web.StreamResponse:
    """Chunks of every choice, then (`stream_options.include_usage`) OpenAI's usage chunk,
    then [DONE]."""
    if isinstance(first, Failed):
        raise BackendError(first.message)
    response = await _start_sse(request)
    timeout = request.app[SETTINGS].write_timeout

    async def send(chunk: dict[str, Any]) -> None:
        if include_usage:
            chunk["usage"] = None  # OpenAI's shape: null on every chunk but the last
        await _send(response, sse(chunk), timeout)

    event = first
    while True:
        if isinstance(event, Piece):
            for chunk in shape.piece(event):
                await send(chunk)
        elif isinstance(event, Failed):
            error = error_body(event.message, "server_error", "generation_failed")
            await _send(response, sse(error), timeout)
            break
        else:
            for chunk in shape.finish(event):
                await send(chunk)
            if shape.complete:
                usage = shape.usage()
                _finish(request, usage, event.decode_tokens_per_second)
                if include_usage:
                    await _send(response, sse(shape.env.usage_chunk(usage)), timeout)
                break
        event = await anext(events)
    await _send(response, sse("[DONE]"), timeout)
    await _send(response, None, timeout)
    return response


def _small_buffers(request: web.Request) -> None:
    """Bound what a stream may queue for its client, in the kernel and in asyncio.

    Linux grows a socket's send buffer up to 4 MiB, so a client that stops reading would be
    noticed only megabytes (minutes of tokens) later; tokens trickle, so 64 KiB costs no
    throughput.
    """
    transport = request.transport
    if transport is None:
        return
    transport.set_write_buffer_limits(high=STREAM_BUFFER_BYTES)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_BUFFER_BYTES)


async def _send(response: web.StreamResponse, data: bytes | None, timeout: float) -> None:
    """Write one event (None: end the stream), or give up on a client that stopped reading.

    A write waits only while the transport's buffer is full, i.e. the client has not read
    what the kernel already holds for it; raising here closes the generation (and frees
    the model) through the caller's `aclosing`.
    """
    try:
        async with asyncio.timeout(timeout):
            await (response.write(data) if data is not None else response.write_eof())
    except TimeoutError:
        raise ClientStalled(f"the client read nothing for {timeout} s") from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    return await completions(request, "chat")


async def text_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions."""
    return await completions(request, "completion")


async def _native_request(request: web.Request, parse: Callable[..., InfillRequest]
                          ) -> tuple[ModelSlot, InfillRequest, LoadedModel]:
    """A llama.cpp-shaped request's slot (shed before any work), the request, its model.
    llama.vim sends `"model": ""` by default: any model, as llama-server takes it."""
    body = await _body(request)
    if isinstance(body, dict) and body.get("model") == "":
        body = {k: v for k, v in body.items() if k != "model"}
    slot = _slot(request, model_of(body))
    slot.check_capacity()
    req = parse(body, slot.spec.sampling, request.app[SETTINGS].max_tokens_cap)
    return slot, req, await slot.model()


async def infill(request: web.Request) -> web.StreamResponse:
    """POST /infill: llama-server's fill-in-the-middle (llama.vim, llama.vscode)."""
    slot, req, model = await _native_request(request, parse_infill)
    prepared = await asyncio.to_thread(
        fim_service.prepare, model, slot.spec, req.params, prefix=req.prefix,
        suffix=req.suffix, prompt=req.prompt, extra=req.extra, samplers=req.samplers,
        n_indent=req.n_indent, t_max_predict_ms=req.t_max_predict_ms,
        cache_prompt=req.cache_prompt)
    request[CONTEXT].log.update(fim_cut=prepared.cut.any, extra_chunks=len(req.extra))
    return await _native(request, slot, model, req, prepared.tokens, prepared.max_tokens,
                         prepared.control, prepared.cut.any, prepared.cut.as_dict())


async def completion(request: web.Request) -> web.StreamResponse:
    """POST /completion: llama-server's own completion endpoint (Continue's llama.cpp
    provider), the prompt as it is, special tokens parsed, as llama-server does."""
    slot, req, model = await _native_request(request, parse_native_completion)
    tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, req.prompt)
    # As llama-server does with its own format: an n_predict past the context's room ends at
    # the context's end (stop_type "limit"); Continue sends its maxTokens, 4096 by default.
    room = model.n_ctx - len(tokens)
    requested = None if req.params.max_tokens is None else min(req.params.max_tokens, room)
    max_tokens = completion_budget(len(tokens), requested, slot.spec.sampling.max_tokens,
                                   model.n_ctx)
    control = Control(samplers=req.samplers.for_context(model.n_ctx), n_indent=req.n_indent,
                      t_max_predict_ms=req.t_max_predict_ms, cache_prompt=req.cache_prompt)
    return await _native(request, slot, model, req, tokens, max_tokens, control, False, None)


async def _native(request: web.Request, slot: ModelSlot, model: LoadedModel,
                  req: InfillRequest, tokens: list[int], max_tokens: int, control: Control,
                  truncated: bool, truncation: dict[str, Any] | None) -> web.StreamResponse:
    """Generate and answer in llama-server's own shape (/infill and /completion): one body
    (`response_fields` honoured) or `data: {"content":…,"stop":false}` events."""
    settings = request.app[SETTINGS]
    n_prompt = len(tokens)
    request[CONTEXT].log["prompt_tokens"] = n_prompt
    request.app[METRICS].prompt_tokens.labels(slot.spec.name).inc(n_prompt)
    control = await _with_drafting(control, model, slot.spec, None, "")
    async with aclosing(slot.generate(tokens, req.params, max_tokens, (), control)) as events:
        first = await anext(events)
        _first_token(request, first)
        if isinstance(first, Failed):
            raise BackendError(first.message)

        def final(content: str, done: Done) -> dict[str, Any]:
            _finish(request, done.usage, done.decode_tokens_per_second)
            usage = done.usage
            evaluated = usage.prompt_tokens - usage.cached_tokens
            out = {
                "index": 0, "content": content, "id_slot": 0, "stop": True,
                "model": slot.spec.name, "tokens_predicted": usage.completion_tokens,
                "tokens_evaluated": n_prompt,
                "generation_settings": generation_settings(req, model.n_ctx, max_tokens),
                "truncated": truncated, "stop_type": done.stop_type,
                "stopping_word": "", "tokens_cached": done.tokens_cached,
                "timings": timings(evaluated, done.prompt_seconds, usage.completion_tokens,
                                   done.predict_seconds, usage.cached_tokens),
            }
            if truncation is not None:
                out["truncation"] = truncation
            return out

        if not req.stream:
            parts, event = [], first
            while isinstance(event, Piece):
                parts.append(event.text)
                event = await anext(events)
            if isinstance(event, Failed):
                raise BackendError(event.message)
            out = final("".join(parts), event)
            return json_response(select_fields(out, req.response_fields)
                                 if req.response_fields else out)
        response = await _start_sse(request)
        timeout = settings.write_timeout
        event, n = first, 0
        while isinstance(event, Piece):
            n += 1
            await _send(response, sse({"index": 0, "content": event.text, "stop": False,
                                       "id_slot": 0, "tokens_predicted": n,
                                       "tokens_evaluated": n_prompt}), timeout)
            event = await anext(events)
        if isinstance(event, Failed):
            await _send(response, sse(error_body(event.message, "server_error",
                                                 "generation_failed")), timeout)
        else:
            await _send(response, sse(final("", event)), timeout)
        await _send(response, None, timeout)
        return response


async def _start_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "X-Request-ID": request[CONTEXT].request_id,
    })
    _small_buffers(request)
    await response.prepare(request)
    return response


async def tokenize(request: web.Request) -> web.Response:
    """POST /v1/tokenize: {model, text} → {tokens: n}, the exact count the model sees."""
    req = parse_tokenize(await _body(request))
    slot = _slot(request, req.model)
    model = await slot.model()
    tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, req.text, req.add_special)
    return json_response({"model": slot.spec.name, "tokens": len(tokens),
                              "n_ctx": model.n_ctx})
