"""Text completions from OpenAI (or any OpenAI-compatible server), with retries: the client of
the OpenAI baselines (``run_baseline_lm.py``, whose original retried with exponential backoff) and
of the critic labelling (:mod:`selfrag.data_creation.critic.judge_run`, where the judge is an
OpenAI model).

Not a :class:`~selfrag.lm.base.LanguageModel`: text goes in and text comes out, one request per
prompt, with no tokenizer, token ids or log-probabilities, so nothing that scores reflection
tokens can run on it. Hence its own method names: :meth:`OpenAICompletionClient.complete` for one
prompt and :meth:`OpenAICompletionClient.complete_texts` for a list.

The original used the pre-1.0 ``openai`` package, recognised three model names, and turned API
errors into the answer string "ERROR: API error outputs". Here: the ``openai>=1`` client, any
``base_url``, the key from ``OPENAI_API_KEY`` (or the original's ``--api_key`` file), exponential
backoff on 429, 5xx, timeouts and connection errors, and a clear :class:`SelfRagError` when the
retries run out or the request is refused. The key is never logged or written.

:meth:`OpenAICompletionClient.complete` also returns the token usage and the number of retries,
for callers that count cost (the critic labelling). One instance may be shared by threads: the
``openai`` client is thread-safe and the retry loop keeps no state.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from selfrag.errors import SelfRagError
from selfrag.io import read_text

logger = logging.getLogger(__name__)

#: Completion-API models (the original used it for ``text-davinci-003``); other names use chat
#: completions.
COMPLETION_MODEL_PREFIXES = ("text-davinci", "davinci", "babbage", "gpt-3.5-turbo-instruct")
#: Names treated as OpenAI models by ``--backend auto``.
OPENAI_MODEL_PREFIXES = ("gpt-", "text-davinci", "davinci", "babbage", "o1", "o3", "o4", "chatgpt")


def is_openai_model(name: str) -> bool:
    """``True`` for OpenAI model names that are not local folders."""
    return name.startswith(OPENAI_MODEL_PREFIXES) and not Path(name).exists()


def default_api(model: str) -> str:
    return "completions" if model.startswith(COMPLETION_MODEL_PREFIXES) else "chat"


def resolve_api_key(api_key_file: str | None = None) -> str:
    """``OPENAI_API_KEY`` from the environment, else the first line of ``api_key_file``.

    Raises:
        SelfRagError: neither is available.
    """
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if api_key_file:
        path = Path(api_key_file)
        if not path.is_file():
            raise SelfRagError(f"--api_key: {api_key_file}: file not found")
        key = read_text(path).strip()
        if key:
            return key
        raise SelfRagError(f"--api_key: {api_key_file} is empty")
    raise SelfRagError("OpenAI models need a key: set OPENAI_API_KEY (or give --api_key FILE)")


@dataclass(frozen=True)
class Completion:
    """One answered request.

    Attributes:
        text: the continuation ('' when the server sent none).
        prompt_tokens / completion_tokens: the server's ``usage`` (0 when it reports none).
        retries: failed attempts before this answer.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0


class OpenAICompletionClient:
    """Text continuations from the chat or completions endpoint, one request per prompt.

    Args:
        model: model name sent to the server.
        api_key: the key (see :func:`resolve_api_key`).
        base_url: server URL (default: ``OPENAI_BASE_URL`` or OpenAI's).
        api: ``chat`` (one user message) or ``completions``; default from the model name.
        max_retries: retries after a retryable failure (429, 5xx, timeout, connection).
        backoff: first delay in seconds, doubled at each retry (capped at ``max_delay``), with
            jitter; a ``Retry-After`` header is honoured up to ``max_delay``.
        timeout: seconds per request.
        organization: OpenAI organization id (the original's ``--org_name``), or None.
    """

    def __init__(self, model: str, api_key: str, base_url: str | None = None,
                 api: str | None = None, max_retries: int = 6, backoff: float = 1.0,
                 max_delay: float = 60.0, timeout: float = 60.0, organization: str | None = None):
        from openai import OpenAI

        self.model, self.api = model, api or default_api(model)
        if self.api not in ("chat", "completions"):
            raise SelfRagError(f"--openai_api: {self.api!r} is not 'chat' or 'completions'")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.max_retries, self.backoff, self.max_delay = max_retries, backoff, max_delay
        self._secret = api_key  # only to redact it from error messages
        # Our own retry loop (below) replaces the client's, so that failures are counted and reported.
        self.client = OpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout,
                             organization=organization)

    def complete_texts(self, prompts: Sequence[str], max_new_tokens: int,
                       temperature: float | None = 0.0, desc: str | None = None) -> list[str]:
        """One continuation per prompt; ``temperature=None`` leaves the server default."""
        return [self.complete(p, max_new_tokens, temperature).text
                for p in tqdm(prompts, desc=desc, disable=desc is None, leave=False)]

    def complete(self, prompt: str, max_new_tokens: int,
                 temperature: float | None = 0.0) -> Completion:
        """One continuation of ``prompt`` with its token usage, retried as the class describes.

        Raises:
            SelfRagError: the retries ran out, or the server refused the request (4xx).
        """
        import openai

        for attempt in range(self.max_retries + 1):
            try:
                return replace(self._request(prompt, max_new_tokens, temperature), retries=attempt)
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError) as err:
                failure = _describe(err, self._secret)
                if attempt == self.max_retries:
                    raise SelfRagError(
                        f"OpenAI request to {self.base_url} (model {self.model!r}) failed after "
                        f"{self.max_retries + 1} attempts; last error: {failure}") from None
                delay = self._delay(attempt, err)
                logger.warning("OpenAI %s; retrying in %.2f s (attempt %d of %d)", failure, delay,
                               attempt + 2, self.max_retries + 1)
                time.sleep(delay)
            except openai.APIStatusError as err:  # 4xx other than 429: retrying cannot help
                raise SelfRagError(f"OpenAI request to {self.base_url} (model {self.model!r}) "
                                   f"refused: {_describe(err, self._secret)}") from None
        raise AssertionError("unreachable")

    def _request(self, prompt: str, max_new_tokens: int, temperature: float | None) -> Completion:
        extra = {} if temperature is None else {"temperature": temperature}
        if self.api == "chat":
            response = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}],
                max_tokens=max_new_tokens, **extra)
            text = response.choices[0].message.content or ""
        else:
            response = self.client.completions.create(
                model=self.model, prompt=prompt, max_tokens=max_new_tokens, **extra)
            text = response.choices[0].text or ""
        usage = getattr(response, "usage", None)
        return Completion(text, int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0))

    def _delay(self, attempt: int, err: Exception) -> float:
        response = getattr(err, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            if header is not None:
                return min(float(header), self.max_delay)
        except ValueError:
            pass
        base = min(self.backoff * 2 ** attempt, self.max_delay)
        return base * (0.5 + random.random() / 2)


def _describe(err: Exception, secret: str | None = None) -> str:
    status = getattr(err, "status_code", None)
    message = str(getattr(err, "message", "") or err)
    if secret:
        message = message.replace(secret, "***")
    message = message[:300]
    return f"HTTP {status}: {message}" if status is not None else f"{type(err).__name__}: {message}"
