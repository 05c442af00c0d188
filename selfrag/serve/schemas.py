"""Request bodies of the OpenAI API subset the server speaks (pydantic models).

Fields the server does not implement are refused with a 400 rather than silently ignored:
streaming, ``n`` > 1, ``best_of``, ``echo``, and penalties other than 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send fields we do not use (user, ...)

    model: str = ""
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]

    def unsupported(self) -> str | None:
        """Why this request cannot be served as asked (``None`` if it can)."""
        if self.stream:
            return "stream=true is not supported"
        if self.n != 1:
            return "only n=1 is supported"
        if self.presence_penalty or self.frequency_penalty:
            return "presence/frequency penalties are not supported"
        return None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False
    best_of: int | None = None

    def unsupported(self) -> str | None:
        if self.echo:
            return "echo=true is not supported"
        if self.best_of not in (None, 1):
            return "best_of is not supported"
        return super().unsupported()


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict]

    def text(self) -> str:
        """The message text; content parts other than text are refused upstream."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
