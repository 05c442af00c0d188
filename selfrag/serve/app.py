"""The FastAPI application: OpenAI's completions and chat-completions endpoints over any backend.

Responses follow OpenAI's shapes (``choices``, ``finish_reason``, ``usage``, ``logprobs``), so the
``openai`` client — and this project's critic labeller — talk to it unchanged. Errors use OpenAI's
``{"error": {"message", "type", "param", "code"}}`` body: 400 for a request the server cannot
serve, 404 for another model name, 500 when generation fails.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from selfrag.lm.base import (
    Generation,
    GenerationRequest,
    LanguageModel,
    context_length,
    prompt_length,
)
from selfrag.serve.batcher import Batcher
from selfrag.serve.schemas import ChatMessage, ChatRequest, CompletionRequest

#: ``max_tokens`` of a chat request that gives none.
DEFAULT_CHAT_MAX_TOKENS = 256


class _ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


def _error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class _Choice:
    """One generation, cut at a stop string, with per-token texts for log-probabilities."""

    text: str
    finish_reason: str
    tokens: list[tuple[int, str, float]]  # (id, text, logprob) of each kept token
    top: list[list[tuple[int, float]]]


def create_app(lm: LanguageModel, model_name: str, *, max_batch: int = 64,
               batch_window: float = 0.01) -> FastAPI:
    """An app serving ``lm`` under ``model_name`` (see the module docstring).

    Args:
        lm: any :mod:`selfrag.lm` backend.
        model_name: the name clients send as ``model`` and ``/v1/models`` lists.
        max_batch: most prompts generated in one batch across concurrent requests.
        batch_window: seconds the batcher waits for more requests before starting a batch.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.batcher = Batcher(lm, max_batch=max_batch, window=batch_window)
        yield
        app.state.batcher.close()

    app = FastAPI(title="selfrag serve", lifespan=lifespan)
    tokenizer = lm.tokenizer
    eos_id = getattr(tokenizer, "eos_token_id", None)

    @app.exception_handler(_ApiError)
    async def api_error(request: Request, err: _ApiError):
        return JSONResponse(_error_body(err.message, err.kind, err.param, err.code), err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(_error_body(f"{where}: {first.get('msg', 'invalid request')}",
                                        "invalid_request_error", where or None), 400)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    async def models():
        return {"object": "list",
                "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "selfrag"}]}

    async def generate(body, prompts: list[str], max_tokens: int, top_logprobs: int,
                       param: str = "prompt") -> list[_Choice]:
        if body.model and body.model != model_name:
            raise _ApiError(404, f"model {body.model!r} is not served here; this server serves "
                                 f"{model_name!r}", "invalid_request_error", "model", "model_not_found")
        problem = body.unsupported()
        if problem:
            raise _ApiError(400, problem)
        limit = context_length(lm)
        for index, prompt in enumerate(prompts if limit is not None else ()):
            tokens = prompt_length(lm, prompt)
            if tokens + max_tokens > limit:  # checked here, so one request fails, not a batch
                where = f"prompt {index}" if len(prompts) > 1 else "the prompt"
                raise _ApiError(400, f"This model's maximum context length is {limit} tokens; "
                                f"{where} has {tokens} tokens and {max_tokens} were requested "
                                "for the completion. Shorten the prompt or lower max_tokens.",
                                param=param, code="context_length_exceeded")
        request = GenerationRequest(max_new_tokens=max_tokens, temperature=body.temperature,
                                    top_p=body.top_p, seed=body.seed or 0,
                                    top_logprobs=top_logprobs)
        future = app.state.batcher.submit(prompts, request)
        try:
            generations = await asyncio.wrap_future(future)
        except Exception as err:
            raise _ApiError(500, f"generation failed: {type(err).__name__}: {err}", "server_error") from err
        return [_choice(tokenizer, g, body.stops(), max_tokens, eos_id) for g in generations]

    def usage(prompts: Sequence[str], choices: Sequence[_Choice]) -> dict:
        prompt_tokens = sum(_count_tokens(tokenizer, p) for p in prompts)
        completion_tokens = sum(len(c.tokens) for c in choices)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts:
            raise _ApiError(400, "prompt: empty list", param="prompt")
        max_tokens = body.max_tokens or body.max_completion_tokens or 16
        choices = await generate(body, prompts, max_tokens, body.logprobs or 0)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": model_name,
            "choices": [{"index": i, "text": c.text, "finish_reason": c.finish_reason,
                         "logprobs": None if body.logprobs is None else _completion_logprobs(tokenizer, c)}
                        for i, c in enumerate(choices)],
            "usage": usage(prompts, choices),
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest):
        prompt = render_chat(tokenizer, body.messages)
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        top = (body.top_logprobs or 0) if body.logprobs else 0
        [choice] = await generate(body, [prompt], max_tokens, top, param="messages")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model_name,
            "choices": [{"index": 0, "finish_reason": choice.finish_reason,
                         "message": {"role": "assistant", "content": choice.text},
                         "logprobs": _chat_logprobs(tokenizer, choice) if body.logprobs else None}],
            "usage": usage([prompt], [choice]),
        }

    return app


def render_chat(tokenizer, messages: Sequence[ChatMessage]) -> str:
    """The prompt for a chat request.

    With a tokenizer chat template, the template (generation prompt added). Without one — Self-RAG
    generators and critics have none — only a lone user message (optionally after one system
    message, joined by a blank line) has an unambiguous rendering: its text is the prompt.
    """
    for message in messages:
        if not isinstance(message.content, str) and any(
                part.get("type") != "text" for part in message.content):
            raise _ApiError(400, "only text content parts are supported", param="messages")
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": m.role if m.role != "developer" else "system", "content": m.text()}
             for m in messages], tokenize=False, add_generation_prompt=True)
    roles = [m.role for m in messages]
    if roles == ["user"]:
        return messages[0].text()
    if roles in (["system", "user"], ["developer", "user"]):
        return f"{messages[0].text()}\n\n{messages[1].text()}"
    raise _ApiError(400, "this model has no chat template: send one user message (optionally "
                         "after one system message), or use /v1/completions", param="messages")


def _count_tokens(tokenizer, text: str) -> int:
    try:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    except TypeError:  # a scripted tokenizer without an encoder: count words
        return len(text.split())


def _choice(tokenizer, generation: Generation, stops: Sequence[str], max_tokens: int,
            eos_id: int | None) -> _Choice:
    ids = list(generation.token_ids)
    ended = len(ids) < max_tokens or (bool(ids) and ids[-1] == eos_id)
    if ids and ids[-1] == eos_id:
        ids = ids[:-1]
    pieces = _token_texts(tokenizer, ids)
    text = "".join(pieces) if pieces else generation.text
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    kept, start = [], 0
    for token_id, piece, logprob in zip(ids, pieces, generation.token_logprobs):
        if cut >= 0 and start >= cut:
            break
        kept.append((token_id, piece, _finite(logprob)))
        start += len(piece)
    if cut >= 0:
        text, reason = text[:cut], "stop"
    else:
        reason = "stop" if ended else "length"
    top = [[(t, _finite(lp)) for t, lp in step] for step in generation.top_logprobs[: len(kept)]]
    return _Choice(text, reason, kept, top)


def _finite(logprob: float) -> float:
    """JSON has no -inf: impossible tokens get -9999.0, as OpenAI-compatible servers report."""
    return max(float(logprob), -9999.0)


def _token_texts(tokenizer, ids: list[int]) -> list[str]:
    """The text each token adds, by decoding growing prefixes (keeps SentencePiece spaces)."""
    pieces, previous = [], ""
    for end in range(1, len(ids) + 1):
        current = tokenizer.decode(ids[:end], skip_special_tokens=False)
        pieces.append(current[len(previous):] if current.startswith(previous) else
                      tokenizer.decode(ids[end - 1:end], skip_special_tokens=False))
        previous = current
    return pieces


def _decode_one(tokenizer, token_id: int) -> str:
    return tokenizer.decode([token_id], skip_special_tokens=False)


def _completion_logprobs(tokenizer, choice: _Choice) -> dict:
    offsets, position = [], 0
    for _, piece, _ in choice.tokens:
        offsets.append(position)
        position += len(piece)
    return {
        "tokens": [piece for _, piece, _ in choice.tokens],
        "token_logprobs": [logprob for _, _, logprob in choice.tokens],
        "top_logprobs": [{_decode_one(tokenizer, t): lp for t, lp in step} for step in choice.top]
        if choice.top else None,
        "text_offset": offsets,
    }


def _chat_logprobs(tokenizer, choice: _Choice) -> dict:
    def entry(text: str, logprob: float) -> dict:
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    content = []
    for index, (_, piece, logprob) in enumerate(choice.tokens):
        item = entry(piece, logprob)
        step = choice.top[index] if index < len(choice.top) else []
        item["top_logprobs"] = [entry(_decode_one(tokenizer, t), lp) for t, lp in step]
        content.append(item)
    return {"content": content}
