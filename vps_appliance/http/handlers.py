"""The model endpoints, one per wire format, each parse → run → render: the format's package
(`cerebrum.openai`, `cerebrum.llamacpp`) parses the body into the internal request,
`engine.run` runs it as internal events, the format's package renders them. Imported on the
first request that needs a model (runtime.py); routes.py maps the paths."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, suppress
from typing import Any

from aiohttp import web

from cerebrum import aliases, anthropic, llamacpp, openai, responses
from cerebrum.generation.checks import json_object
from cerebrum.generation.checks import model as model_of
from cerebrum.generation.events import Event, Failure, Finish, KeepAlive, TextDelta
from cerebrum.generation.request import Request
from cerebrum.jsonwire import decode_json, sse_event
from cerebrum.openai.options import stream_options
from cerebrum.openai.render import Render

from ..engine import chat, run
from ..engine.slots import LoadedModel, ModelSlot
from ..errors import (
    BackendError,
    BadRequest,
    ClientStalled,
    ContextLengthExceeded,
    NotFound,
    PayloadTooLarge,
)
from .replies import json_response
from .state import CLOCK, CONTEXT, IDENTITIES, METRICS, SETTINGS, SLOTS

STREAM_BUFFER_BYTES = 64 * 1024  # per stream: the kernel's send buffer and asyncio's own
# While a long prompt is evaluated nothing is generated: an agent's stream gets a keep-alive
# (Anthropic's `ping`) this often; Claude Code takes 15-20 s of silence for a stall.
KEEPALIVE_SECONDS = 5.0
KEEPALIVE_COMMENT = b": keep-alive\n\n"  # an SSE comment: clients skip it, proxies see life


async def _body(request: web.Request) -> Any:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse before reading: a client announcing a huge body need not send it.
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    return decode_json(await request.read())


def _slot(request: web.Request, name: str | None) -> ModelSlot:
    """The slot of the model asked for (absent: the first; an alias: its model)."""
    slots, settings = request.app[SLOTS], request.app[SETTINGS]
    name = name or settings.models[0].name
    if name not in slots and (alias := aliases.resolve(name, settings.aliases)) is not None:
        name = alias[1] or settings.models[0].name
    slot = slots.get(name)
    if slot is None:
        raise NotFound(f"model {name!r} does not exist; available: {', '.join(slots)} or a "
                       f"name matching {', '.join(p for p, _ in settings.aliases)}",
                       code="model_not_found")
    request[CONTEXT].log["model"] = name
    return slot


async def _kept_alive(events: AsyncIterator[Event], interval: float) -> AsyncIterator[Event]:
    """`events`, with a `KeepAlive` whenever `interval` seconds pass without one (the pending
    step is never cancelled, only waited for again); the engine's own keep-alives (one a
    token while tool-call text is held back) are passed on at most once an `interval`."""
    loop = asyncio.get_running_loop()
    step: asyncio.Task[Event] | None = None
    last = loop.time()
    try:
        while True:
            step = step or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({step}, timeout=interval)
            if not done:
                last = loop.time()
                yield KeepAlive()
                continue
            try:
                event = step.result()
            except StopAsyncIteration:
                return
            step = None
            if isinstance(event, KeepAlive) and loop.time() - last < interval:
                continue
            last = loop.time()
            yield event
    finally:
        if step is not None and not step.done():
            step.cancel()
            with suppress(asyncio.CancelledError, StopAsyncIteration):
                await step


async def _generate(request: web.Request, slot: ModelSlot, prepared: run.Prepared,
                    keepalive: float | None = None) -> AsyncIterator[Event]:
    """Run a prepared generation, with its metrics and log fields; a failure before the first
    event (queueing, loading, llama.cpp) is raised, so it still gets its status. `keepalive`:
    a `KeepAlive` every so many seconds while nothing comes (not the first event)."""
    n_prompt = len(prepared.tokens)
    request[CONTEXT].log["prompt_tokens"] = n_prompt
    request.app[METRICS].prompt_tokens.labels(slot.spec.name).inc(n_prompt)
    async with aclosing(run.events(slot, prepared)) as steps, aclosing(
            steps if keepalive is None else _kept_alive(steps, keepalive)) as events:
        first = True
        async for event in events:
            if isinstance(event, KeepAlive) and first and keepalive is not None:
                yield event
                continue
            if first:
                _first_token(request)
                first = False
                if isinstance(event, Failure):
                    raise BackendError(event.message)
            if isinstance(event, Finish) and event.timing.tokens_per_second is not None:
                request[CONTEXT].log["tok_s"] = round(event.timing.tokens_per_second, 1)
            yield event


def _first_token(request: web.Request) -> None:
    app = request.app
    ttft = app[CLOCK]() - request[CONTEXT].started
    app[METRICS].ttft.labels(request[CONTEXT].log["model"]).observe(ttft)
    request[CONTEXT].log["ttft_ms"] = round(ttft * 1000, 1)


def _usage(request: web.Request, completion: int, cached: int) -> None:
    request[CONTEXT].log["completion_tokens"] = completion
    request[CONTEXT].log["cached_tokens"] = cached


async def completions(request: web.Request, kind: openai.Kind) -> web.StreamResponse:
    """POST /v1/chat/completions and /v1/completions: OpenAI's format."""
    settings = request.app[SETTINGS]
    body = await _body(request)
    slot = _slot(request, model_of(json_object(body)))
    slot.check_capacity()  # shed before doing any work for the request
    req = openai.parse(kind, body, settings.max_tokens_cap, "backend")
    prepared = await run.prepare(await slot.model(), slot.spec, req, settings.max_n)
    if prepared.cut is not None:
        request[CONTEXT].log["fim_cut"] = prepared.cut.any
    env = openai.Envelope.new(kind, request[CONTEXT].request_id, slot.spec.name,
                              request.app[IDENTITIES][slot.spec.name].fingerprint)
    render = Render(env, n=req.n, with_logprobs=req.logprobs, prompt_chars=len(req.prompt),
                    include_usage=stream_options(body))
    async with aclosing(_generate(request, slot, prepared)) as events:
        if not req.stream:
            async for event in events:
                if isinstance(event, Failure):
                    raise BackendError(event.message)
                render.collect(event)
                if render.complete:
                    break
            usage = render.usage()
            _usage(request, usage.completion_tokens, usage.cached_tokens)
            return json_response(render.body())
        response: web.StreamResponse | None = None
        async for event in events:
            response = response or await _start_sse(request)
            for payload in render.stream(event):
                await _send(request, response, sse_event(payload))
            if render.complete or isinstance(event, Failure):
                break
        if render.complete:
            usage = render.usage()
            _usage(request, usage.completion_tokens, usage.cached_tokens)
        assert response is not None
        await _send(request, response, None)
        return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    return await completions(request, "chat")


async def text_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions."""
    return await completions(request, "completion")


async def _agent_prepare(request: web.Request, body: Any, parse: Any
                         ) -> tuple[ModelSlot, Request, run.Prepared | ContextLengthExceeded]:
    """An agent format's request parsed and made ready (its length clipped to the context);
    a prompt past the context is returned, for the format to say so in its own way."""
    settings = request.app[SETTINGS]
    slot = _slot(request, model_of(json_object(body)))
    slot.check_capacity()
    req = parse(body)
    try:
        prepared = await run.prepare(await slot.model(), slot.spec, req, settings.max_n,
                                     clip=True)
    except ContextLengthExceeded as exc:
        return slot, req, exc
    return slot, req, prepared


async def _agent_answer(request: web.Request, slot: ModelSlot, prepared: run.Prepared,
                        render: Any, frame: Callable[[str, dict[str, Any]], bytes],
                        stream: bool, whole: Callable[[], web.Response]
                        ) -> web.StreamResponse:
    """Run an agent format's request and answer with its renderer (`start`, `stream`,
    `collect`): named events written by `frame`, keep-alives while the prompt is evaluated
    (the format's own event, else an SSE comment);
    or, not streamed, `whole` (the renderer's body)."""
    async with aclosing(_generate(request, slot, prepared, KEEPALIVE_SECONDS)) as events:
        if not stream:
            async for event in events:
                render.collect(event)
                if isinstance(event, Failure | Finish):
                    break
            return whole()
        response = await _start_sse(request)
        for name, payload in render.start():
            await _send(request, response, frame(name, payload))
        async for event in events:
            pairs = render.stream(event)
            for name, payload in pairs:
                await _send(request, response, frame(name, payload))
            if isinstance(event, KeepAlive) and not pairs:  # the format has no event for it
                await _send(request, response, KEEPALIVE_COMMENT)
            if isinstance(event, Failure | Finish):
                break
        await _send(request, response, None)
        return response


async def responses_create(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses: OpenAI's Responses API (Codex CLI, `client.responses`)."""
    body = await _body(request)
    cap = request.app[SETTINGS].max_tokens_cap
    slot, req, prepared = await _agent_prepare(
        request, body, lambda b: responses.parse(b, cap, "backend"))
    render = responses.Render(responses.Envelope.new(req, request[CONTEXT].request_id,
                                                     slot.spec.name))
    if isinstance(prepared, ContextLengthExceeded):
        if not req.stream:
            raise prepared
        failed = Failure(str(prepared), "context_length_exceeded")
        response = await _start_sse(request)
        for name, payload in [*render.start(), *render.stream(failed)]:
            await _send(request, response, responses.sse(name, payload))
        await _send(request, response, None)
        return response
    return await _agent_answer(
        request, slot, prepared, render, responses.sse, req.stream,
        lambda: json_response(render.body(), status=500 if render.failed else 200))


async def responses_input_tokens(request: web.Request) -> web.Response:
    """POST /v1/responses/input_tokens: the prompt's tokens, as the model would see them."""
    body = await _body(request)
    cap = request.app[SETTINGS].max_tokens_cap
    slot = _slot(request, model_of(json_object(body)))
    req = responses.parse(body, cap, "backend", kind="input_tokens")
    return json_response(responses.input_tokens_body(await _prompt_tokens(slot, req)))


async def _prompt_tokens(slot: ModelSlot, req: Request) -> int:
    return await run.count(await slot.model(), slot.spec, req) if req.turns else 0


async def messages(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages: Anthropic's Messages API (Claude Code, the `anthropic` SDK)."""
    anthropic.check_headers(request.headers)
    body = await _body(request)
    slot, req, prepared = await _agent_prepare(
        request, body, lambda b: anthropic.parse(b, "backend"))
    if isinstance(prepared, ContextLengthExceeded):  # Claude Code compacts on these words
        raise BadRequest(anthropic.prompt_too_long(prepared.tokens, prepared.maximum)
                         if prepared.tokens else str(prepared), code=prepared.code)
    model = await slot.model()
    render = anthropic.Render(f"msg_{request[CONTEXT].request_id}", slot.spec.name,
                              len(prepared.tokens), context=model.n_ctx,
                              stop_sequences=req.stop)

    def whole() -> web.Response:
        if render.error is not None:
            status, error = render.error
            return json_response(error, status=status)
        return json_response(render.body())

    return await _agent_answer(request, slot, prepared, render, anthropic.frame, req.stream,
                               whole)


async def messages_count_tokens(request: web.Request) -> web.Response:
    """POST /v1/messages/count_tokens: the prompt's tokens, as the model would see them."""
    anthropic.check_headers(request.headers)
    body = await _body(request)
    slot = _slot(request, model_of(json_object(body)))
    req = anthropic.parse_count_tokens(body, "backend")
    return json_response(anthropic.count_tokens_body(await _prompt_tokens(slot, req)))


def _generation_settings(prepared: run.Prepared, n_ctx: int) -> dict[str, Any]:
    """llama-server's `generation_settings`: the parameters the reply was made with
    (llama.vscode reads `n_ctx` from it for its status bar)."""
    p, c = prepared.params, prepared.control
    return {"n_ctx": n_ctx, "n_predict": prepared.max_tokens, "temperature": p.temperature,
            "top_k": p.top_k, "top_p": p.top_p, "min_p": p.min_p, "seed": p.seed,
            "stop": list(p.stop), "samplers": list(c.samplers.order),
            "n_indent": c.n_indent, "t_max_predict_ms": c.t_max_predict_ms}


async def _native(request: web.Request, endpoint: str) -> web.StreamResponse:
    """POST /infill and /completion: llama.cpp's own format (llama.vim, llama.vscode;
    Continue's llama.cpp provider)."""
    body = await _body(request)
    slot = _slot(request, llamacpp.model(body))
    slot.check_capacity()
    parse = llamacpp.parse_infill if endpoint == "infill" else llamacpp.parse_completion
    native = parse(body, request.app[SETTINGS].max_tokens_cap)
    model: LoadedModel = await slot.model()
    prepared = await run.prepare_fill(model, slot.spec, native.fill)
    if not native.fill.rendered:
        assert prepared.cut is not None
        request[CONTEXT].log.update(fim_cut=prepared.cut.any,
                                    extra_chunks=len(native.fill.extra))
    cut = prepared.cut
    reply = llamacpp.Reply(slot.spec.name, len(prepared.tokens),
                           _generation_settings(prepared, model.n_ctx),
                           truncated=cut is not None and cut.any,
                           truncation=cut.as_dict() if cut is not None else None,
                           response_fields=native.response_fields)
    async with aclosing(_generate(request, slot, prepared)) as events:
        if not native.fill.stream:
            parts = []
            async for event in events:
                if isinstance(event, Failure):
                    raise BackendError(event.message)
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Finish):
                    _usage(request, event.usage.completion_tokens, event.usage.cached_tokens)
                    return json_response(reply.body("".join(parts), event))
            raise BackendError("the generation ended without finishing")
        response = await _start_sse(request)
        async for event in events:
            if isinstance(event, TextDelta):
                await _send(request, response, sse_event(reply.piece(event)))
            elif isinstance(event, Failure):
                await _send(request, response, sse_event(openai.error_body(
                    event.message, "server_error", event.code)))
                break
            elif isinstance(event, Finish):
                _usage(request, event.usage.completion_tokens, event.usage.cached_tokens)
                await _send(request, response, sse_event(reply.final("", event)))
                break
        await _send(request, response, None)
        return response


async def infill(request: web.Request) -> web.StreamResponse:
    """POST /infill: llama-server's fill-in-the-middle."""
    return await _native(request, "infill")


async def completion(request: web.Request) -> web.StreamResponse:
    """POST /completion: llama-server's own completion, the prompt as it is, special tokens
    parsed, as llama-server does."""
    return await _native(request, "completion")


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


async def _send(request: web.Request, response: web.StreamResponse, data: bytes | None) -> None:
    """Write one event (None: end the stream), or give up on a client that stopped reading.

    A write waits only while the transport's buffer is full, i.e. the client has not read
    what the kernel already holds for it; raising here closes the generation (and frees
    the model) through the caller's `aclosing`.
    """
    timeout = request.app[SETTINGS].write_timeout
    try:
        async with asyncio.timeout(timeout):
            await (response.write(data) if data is not None else response.write_eof())
    except TimeoutError:
        raise ClientStalled(f"the client read nothing for {timeout} s") from None


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
    body = json_object(await _body(request))
    text = body.get("text")
    if not isinstance(text, str):
        raise BadRequest("'text' is required: a string", param="text")
    add_special = body.get("add_special", True)
    if not isinstance(add_special, bool):
        raise BadRequest("'add_special' must be a boolean", param="add_special")
    slot = _slot(request, model_of(body))
    model = await slot.model()
    tokens = await asyncio.to_thread(chat.prompt_tokens, model.llm, text, add_special)
    return json_response({"model": slot.spec.name, "tokens": len(tokens),
                          "n_ctx": model.n_ctx})
