"""A scripted server speaking the OpenAI chat-completions API (`POST /v1/chat/completions`) on loopback,
Starlette on uvicorn in a thread (`tests.asgi_server.serving`). Each request is recorded in `requests`; the
`script` answers it with an assistant message (a tool call or text), or sleeps, or fails, as a test decides.
The OpenAI client pydantic-ai drives talks to it like to any OpenAI-compatible server (Ollama, vLLM)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.asgi_server import serving

FINAL = "final_result"  # the tool pydantic-ai offers for the structured answer


def tool_call(name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    """An assistant message calling one tool (arguments as JSON, or raw text to send a malformed call)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"role": "assistant", "content": None, "tool_calls": [{"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": args}}]}


def answer(**advice: Any) -> dict[str, Any]:
    """The structured answer: a call of the final_result tool with the Advice fields."""
    return tool_call(FINAL, advice)


def facts_of(body: dict[str, Any]) -> dict[str, Any]:
    """The case's FACTS JSON from the user message of a request (as `case_prompt` writes it)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    text = user if isinstance(user, str) else "".join(part.get("text", "") for part in user)
    start = text.index("FACTS (JSON):\n") + len("FACTS (JSON):\n")
    return json.loads(text[start : text.index("\n\nDeterministic root-cause classifier")])


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


Script = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class ScriptedModel:
    script: Script = field(default=lambda body: answer())
    delay_seconds: float = 0.0  # answer this late (a slow server)
    fail_status: int | None = None  # answer this HTTP status instead
    requests: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_status is not None:
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=self.fail_status)
        message = self.script(body)
        return JSONResponse({
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460},
        })


@contextmanager
def openai_api_server(model: ScriptedModel) -> Iterator[str]:
    """Serve `model` on loopback; yield the base URL an OpenAI client takes (…/v1)."""
    app = Starlette(routes=[Route("/v1/chat/completions", model.completions, methods=["POST"])])
    with serving(app) as url:
        yield f"{url}/v1"
