"""An OpenAI-compatible chat-completions server on loopback whose answers follow a script of faults.

Stdlib only (http.server on a ThreadingHTTPServer, one thread per request), so tests, benchmarks and
end-to-end runs can point the real ``openai`` client at ``server.url`` through the normal ``api_base``
setting. ``POST /v1/chat/completions`` answers both ``stream: true`` (SSE ``data: {...}`` chunks, then
``data: [DONE]``) and plain JSON.

The script decides the mode of every request:
- a mode name or a ``Reply``: every request gets it;
- a list: request i gets entry i, and the last entry repeats once the list is used up;
- a callable ``(Request) -> mode name | Reply``: it sees the request body (e.g. the prompt).

A streamed answer that runs to the end closes with a ``usage`` chunk when the request asks for it
(``stream_options: {"include_usage": true}``), as OpenAI's API does; ``usage="ignore"`` plays a server that
never sends one, ``usage="reject"`` one that refuses the option with HTTP 400. Every request keeps its
headers (``Request.headers``), e.g. to check the ``Authorization`` the client sent.

Modes: ``ok`` (the text, by default a SEARCH/REPLACE diff), ``slow`` (the text streamed at
``tokens_per_second``, 4 characters a token), ``hang`` (headers, then nothing until the server stops),
``http_500``, ``http_429``, ``http_400``, ``malformed`` (invalid JSON in the body or an SSE event),
``no_choices`` (a well-formed stream whose chunks have no choices) and ``no_diff`` (a polite answer with no diff).

    with FaultServer(["http_500", answer(diff)]) as server:
        ... LLMModelConfig(name="fake", api_base=server.url, api_key="x") ...
        assert server.requests == {"http_500": 1, "ok": 1}
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence, Union

USAGE = ("send", "ignore", "reject")
MODES = ("ok", "slow", "hang", "http_500", "http_429", "http_400", "malformed", "no_choices", "no_diff")
TOKEN_CHARS = 4  # characters per streamed token, as the streaming client estimates them
DEFAULT_TEXT = """Operator: Score:scaled_dot
<<<<<<< SEARCH
        scores = q @ k.T
=======
        scores = (q @ k.T) / jnp.sqrt(q.shape[-1])
>>>>>>> REPLACE
"""
NO_DIFF_TEXT = ("Thank you for sharing this design. The mixer already looks well balanced, so I would keep it "
                "as it is and focus on training longer instead.")


@dataclass(frozen=True)
class Reply:
    """How to answer one request; ``text`` and ``tokens_per_second`` default to the server's."""

    mode: str = "ok"
    text: str | None = None
    tokens_per_second: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault-server mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.tokens_per_second is not None and not self.tokens_per_second > 0:
            raise ValueError(f"tokens_per_second must be > 0, got {self.tokens_per_second!r}")


def answer(text: str) -> Reply:
    """A correct answer that echoes ``text`` back as the model's reply."""
    return Reply("ok", text)


@dataclass(frozen=True)
class Request:
    """One chat-completions request as the server received it (``index`` counts from 0)."""

    index: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased

    @property
    def wants_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def last_user_message(self) -> str:
        users = [m.get("content") or "" for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""


Script = Union[str, Reply, Sequence[Union[str, Reply]], Callable[[Request], Union[str, Reply]]]


class FaultServer:
    """``FaultServer(script).start()``, ``.url`` (an api_base ending in /v1), ``.requests``, ``.stop()``."""

    def __init__(self, script: Script = "ok", *, text: str = DEFAULT_TEXT, tokens_per_second: float = 20.0,
                 model: str = "fault-server", usage: str = "send"):
        if isinstance(script, (list, tuple)) and not script:
            raise ValueError("the script list is empty: give at least one mode")
        if not tokens_per_second > 0:
            raise ValueError(f"tokens_per_second must be > 0, got {tokens_per_second!r}")
        if usage not in USAGE:
            raise ValueError(f"usage must be one of {', '.join(USAGE)}, got {usage!r}")
        self.usage = usage
        self.script, self.text, self.model, self.tokens_per_second = script, text, model, tokens_per_second
        self.received: list[Request] = []
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fault server is not running: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def requests(self) -> Counter[str]:
        """Requests served so far, per mode."""
        with self._lock:
            return Counter(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return len(self.received)

    def start(self) -> "FaultServer":
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"fault_server": self})
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True  # a hanging request must not hold up stop()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # releases hanging and slow requests
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _choose(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[Request, Reply]:
        with self._lock:
            request = Request(len(self.received), body, headers)
            self.received.append(request)
        if callable(self.script):
            entry = self.script(request)
        elif isinstance(self.script, (list, tuple)):
            entry = self.script[min(request.index, len(self.script) - 1)]
        else:
            entry = self.script
        reply = entry if isinstance(entry, Reply) else Reply(entry)
        with self._lock:
            self._counts[reply.mode] += 1
        return request, reply


class _Handler(BaseHTTPRequestHandler):
    fault_server: FaultServer
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no chunked encoding to manage

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            return self._send_json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request"}})
        if self.fault_server.usage == "reject" and "stream_options" in body:
            return self._send_json(400, {"error": {"message": "Unrecognized request argument supplied: "
                                                              "stream_options", "type": "invalid_request"}})
        headers = {key.lower(): value for key, value in self.headers.items()}
        request, reply = self.fault_server._choose(body, headers)
        try:
            self._serve(request, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client cut the call: exactly what stalls do
            pass

    def _serve(self, request: Request, reply: Reply) -> None:
        server = self.fault_server
        text = NO_DIFF_TEXT if reply.mode == "no_diff" else reply.text if reply.text is not None else server.text
        if reply.mode in ("http_500", "http_429", "http_400"):
            status = int(reply.mode[5:])
            headers = {"Retry-After": "0"} if status == 429 else {}
            return self._send_json(status, {"error": {"message": f"injected HTTP {status}", "type": "fault"}},
                                   headers)
        if reply.mode == "hang":
            self._start_body(request.stream)
            server._stopping.wait()
            return
        if not request.stream:
            return self._answer_whole(reply, text)
        self._start_body(True)
        if reply.mode == "malformed":
            return self._event('{"id": "chatcmpl-fault", "choices": [{"delta": {"content": "trunc')
        if reply.mode == "no_choices":
            self._event(json.dumps(self._chunk(None)))
            return self._event("[DONE]")
        self._event(json.dumps(self._chunk({"role": "assistant", "content": ""})))
        if reply.mode == "slow":
            rate = reply.tokens_per_second or server.tokens_per_second
            pieces, pause = _split(text, TOKEN_CHARS), 1.0 / rate
        else:
            pieces, pause = _split(text, 16), 0.0
        for piece in pieces:
            if pause and server._stopping.wait(pause):
                return
            self._event(json.dumps(self._chunk({"content": piece})))
        self._event(json.dumps(self._chunk({}, finish="stop")))
        if request.wants_usage and server.usage == "send":
            self._event(json.dumps({**self._chunk(None), "usage": _usage(text)}))
        self._event("[DONE]")

    def _answer_whole(self, reply: Reply, text: str) -> None:
        if reply.mode == "malformed":
            return self._send_raw(200, b'{"id": "chatcmpl-fault", "choices": [{"message": ', "application/json")
        if reply.mode == "slow":
            rate = reply.tokens_per_second or self.fault_server.tokens_per_second
            if self.fault_server._stopping.wait(len(text) / TOKEN_CHARS / rate):
                return
        choices = [] if reply.mode == "no_choices" else [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
        self._send_json(200, {"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
                              "model": self.fault_server.model, "choices": choices, "usage": _usage(text)})

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": self.fault_server.model, "choices": choices}

    def _start_body(self, stream: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def _event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def _usage(text: str) -> dict[str, int]:
    """The server's own count: 1 prompt token (the fault server never reads the prompt), text / 4 completion."""
    tokens = -(-len(text) // TOKEN_CHARS)
    return {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}


def _split(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]
