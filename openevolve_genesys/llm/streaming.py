"""A streaming OpenAI-compatible client for OpenEvolve that cuts a call as soon as the model stops making progress.

OpenEvolve 0.4.0's stock client makes one blocking, non-streaming request and waits for ``llm.timeout``
(times ``retries + 1``), so a hung endpoint costs minutes per attempt and looks exactly like a slow one.
This client streams and watches every chunk: no text within ``first_token_seconds``, no text for
``idle_seconds``, or (after ``grace_seconds`` of streaming) fewer than ``min_tokens_per_second`` on
average since the first token, and the call is cut at once with ``LLMStalled``. A stall is never retried
here: the caller re-queues the attempt and decides. Infra faults (refused connections, HTTP 5xx/429,
malformed streams) are retried ``retries`` times, ``retry_delay`` apart, then raise ``LLMUnavailable``.
Other HTTP errors (400, 401, 404, ...) mean the request itself is wrong and raise ``LLMRequestRejected``.

The stall rules and the rate estimate (streamed characters / 4) live in ``stall.py``; the tokens each
call cost (the server's count, else text-carrying chunks and the prompt's characters / 4; stalled and
failed calls too) in ``usage.py``, exposed per thread as ``last_usage`` (OpenEvolve's ensemble copies it
after every call) and ``last_call``. The key and endpoint come from the YAML, else the environment (``endpoint.py``).

Wire it in through ``LLMModelConfig.init_client = functools.partial(init_streaming_client, policy=...)``;
OpenEvolve's ``LLMEnsemble`` then builds one client per model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, TypeVar

import openai
from openevolve.config import LLMModelConfig
from openevolve.llm.base import LLMInterface

from openevolve_genesys.outcomes import AttemptClass
from openevolve_genesys.llm import endpoint
from openevolve_genesys.llm.errors import (LLMCallError, LLMRequestRejected, LLMStalled, LLMUnavailable,
                                           classify_llm_error, connect_timeout, retryable)
from openevolve_genesys.llm.stall import Progress, StallPolicy
from openevolve_genesys.llm.usage import CallTokens, PerThread, estimate_tokens, reported_usage

__all__ = ["CallStats", "LLMCallError", "LLMRequestRejected", "LLMStalled", "LLMUnavailable", "StreamingLLM",
           "classify_llm_error", "init_streaming_client"]  # the errors live in errors.py, re-exported here
log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_SECONDS = 10.0  # a TCP connect this slow means the endpoint is unreachable (infra), not a slow model
CLOSE_SECONDS = 2.0  # closing a cut stream must never hang the caller
# How a server that validates its request fields strictly refuses an option it does not know.
UNKNOWN_FIELD_STATUS = frozenset({400, 422})
# OpenAI's reasoning models reject max_tokens/temperature/top_p and take max_completion_tokens instead.
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True)
class CallStats:
    """Accounting of one ``generate_with_context`` call, kept on the client as ``last_call``."""

    seconds: float  # wall time including retries and retry delays
    tokens: int  # tokens received over all attempts (usage.py: the server's count, else text chunks)
    retries: int  # attempts beyond the first
    outcome: AttemptClass  # the class classify_llm_error gives the call's error; ok when it answered


class _Cut(Exception):
    """One attempt ended without an answer; ``kind`` is stalled, infra or rejected."""

    def __init__(self, kind: str, why: str, status: int | None = None):
        super().__init__(why)
        self.kind, self.why, self.status = kind, why, status


class StreamingLLM(LLMInterface):
    """OpenEvolve LLM client streaming from an OpenAI-compatible endpoint under a ``StallPolicy``."""

    last_call = PerThread()  # CallStats of this thread's last call
    last_usage = PerThread()  # its tokens as OpenEvolve's dict, read by the ensemble; set even when the call failed

    def __init__(self, model_cfg: LLMModelConfig, policy: StallPolicy | None = None):
        if not getattr(model_cfg, "name", None):
            raise ValueError("the LLM model has no name: set `name` for every entry of llm.models")
        api_base = endpoint.api_base(getattr(model_cfg, "api_base", None))
        if not api_base:
            raise ValueError(f"LLM model {model_cfg.name!r} has no api_base: set llm.api_base (or the model's "
                             "api_base, or $OPENAI_BASE_URL) to an OpenAI-compatible endpoint, e.g. "
                             "http://127.0.0.1:8000/v1")
        if policy is not None and not isinstance(policy, StallPolicy):
            raise TypeError(f"policy must be a StallPolicy, got {type(policy).__name__}")
        self.model = model_cfg.name  # OpenEvolve's ensemble logs vars(client)["model"]
        self.api_base = str(api_base)
        # Local servers ignore the key, but the SDK insists on one.
        self.api_key = endpoint.api_key(model_cfg.api_key) or "none"
        self.system_message = model_cfg.system_message
        self.temperature, self.top_p, self.max_tokens = model_cfg.temperature, model_cfg.top_p, model_cfg.max_tokens
        self.timeout = model_cfg.timeout
        self.retries, self.retry_delay = model_cfg.retries, model_cfg.retry_delay
        self.random_seed = getattr(model_cfg, "random_seed", None)
        self.reasoning_effort = getattr(model_cfg, "reasoning_effort", None)
        self.policy = policy or StallPolicy()
        self.ask_usage = True  # cleared if the endpoint refuses stream_options: tokens are then counted from chunks

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return await self.generate_with_context(self.system_message or "", [{"role": "user", "content": prompt}],
                                                **kwargs)

    async def generate_with_context(self, system_message: str, messages: list[dict[str, str]], **kwargs: Any) -> str:
        """The full answer text; raises LLMStalled, LLMUnavailable or LLMRequestRejected instead."""
        params = self._params(system_message, messages, kwargs)
        retries = max(0, int(kwargs.get("retries", self.retries) or 0))
        delay = float(kwargs.get("retry_delay", self.retry_delay) or 0)
        timeout = kwargs.get("timeout", self.timeout)
        prompt_chars = sum(len(str(m.get("content") or "")) for m in params["messages"])
        start, tokens = time.monotonic(), CallTokens(prompt_estimate=estimate_tokens(prompt_chars))
        self.last_usage = None
        # One SDK client per call: its connection pool is bound to the event loop, and callers may run each
        # call under its own asyncio.run. Read timeouts are ours (per chunk); the SDK only bounds the connect.
        client = openai.AsyncOpenAI(base_url=self.api_base, api_key=self.api_key, max_retries=0,
                                    timeout=openai.Timeout(None, connect=min(CONNECT_SECONDS,
                                                                             self.policy.first_token_seconds)))
        attempt = 0
        try:
            while True:
                if self.ask_usage:
                    params["stream_options"] = {"include_usage": True}
                progress = Progress(time.monotonic())
                try:
                    text = await self._attempt(client, params, progress, timeout)
                except _Cut as cut:
                    tokens.add(progress)
                    if self._refused_usage(cut, params):
                        continue  # the same attempt again without the option: the server never read the request
                    if cut.kind != "infra" or attempt >= retries:
                        raise self._failure(cut, time.monotonic() - start, tokens.completion,
                                            attempt) from cut.__cause__
                    log.warning("LLM %s at %s, attempt %d/%d: %s; retrying in %g s", self.model, self.api_base,
                                attempt + 1, retries + 1, cut.why, delay)
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                except BaseException:  # cancelled by the caller's own time limit: what came still counts
                    tokens.add(progress)
                    raise
                tokens.add(progress)
                self.last_call = CallStats(time.monotonic() - start, tokens.completion, attempt, "ok")
                return text
        finally:
            self.last_usage = tokens.usage(self.model)
            await _quietly(client.close())

    def _refused_usage(self, cut: _Cut, params: dict[str, Any]) -> bool:
        """Whether the endpoint refused the request for its stream_options (then never send them again).
        Only a refusal that names the option counts: any other 400 is a real configuration error."""
        if (cut.kind != "rejected" or cut.status not in UNKNOWN_FIELD_STATUS or "stream_options" not in params
                or "stream_options" not in cut.why):
            return False
        del params["stream_options"]
        self.ask_usage = False
        log.warning("LLM %s at %s refused stream_options (%s); asking without it, tokens are counted from "
                    "the streamed chunks from now on", self.model, self.api_base, cut.why)
        return True

    def _params(self, system_message: str, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> dict[str, Any]:
        chat = ([{"role": "system", "content": system_message}] if system_message else []) + list(messages)
        params: dict[str, Any] = {"model": self.model, "messages": chat}
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if str(self.model).lower().startswith(REASONING_MODEL_PREFIXES):
            if max_tokens is not None:
                params["max_completion_tokens"] = max_tokens
        else:
            optional = {"temperature": kwargs.get("temperature", self.temperature),
                        "top_p": kwargs.get("top_p", self.top_p), "max_tokens": max_tokens}
            params.update({k: v for k, v in optional.items() if v is not None})
        for key, value in (("seed", kwargs.get("seed", self.random_seed)),
                           ("reasoning_effort", kwargs.get("reasoning_effort", self.reasoning_effort))):
            if value is not None:
                params[key] = value
        return params

    async def _attempt(self, client: openai.AsyncOpenAI, params: dict[str, Any], progress: Progress,
                       timeout: float | None) -> str:
        stream = None
        try:
            stream = await self._watched(client.chat.completions.create(**params, stream=True), progress, timeout)
            progress.accepted = True
            parts: list[str] = []
            saw_choices = False
            while True:
                try:
                    chunk = await self._watched(anext(stream), progress, timeout)
                except StopAsyncIteration:
                    break
                progress.usage = reported_usage(chunk) or progress.usage
                piece = _chunk_text(chunk)
                if piece is not None:
                    saw_choices = True
                    parts.append(piece[0])
                    progress.add(piece[1], time.monotonic())
            if not saw_choices:
                raise _Cut("infra", "malformed response: the stream ended without any choices "
                                    "(does the endpoint support stream=true chat completions?)")
            return "".join(parts)
        except _Cut:
            raise
        except openai.APIStatusError as err:
            kind = "infra" if retryable(err.status_code) else "rejected"
            raise _Cut(kind, _status_detail(err), err.status_code) from err
        except openai.APITimeoutError as err:
            if connect_timeout(err):
                raise _Cut("infra", f"could not connect within {CONNECT_SECONDS:g} s") from err
            raise _Cut("stalled", "the HTTP client timed out waiting for data") from err
        except openai.APIConnectionError as err:
            raise _Cut("infra", f"connection failed: {err.__cause__ or err}") from err
        except (openai.APIResponseValidationError, ValueError) as err:  # ValueError: bad JSON in an SSE event
            raise _Cut("infra", f"malformed response: {err}") from err
        except openai.APIError as err:  # an error object sent inside the stream
            raise _Cut("infra", f"the endpoint reported an error mid-stream: {err.message}") from err
        finally:
            if stream is not None:
                await _quietly(stream.close())

    async def _watched(self, step: Awaitable[T], progress: Progress, timeout: float | None) -> T:
        """Await one step of the request (the response headers, or one chunk) until the stall deadline."""
        at, rule = progress.deadline(self.policy, timeout)
        try:
            async with asyncio.timeout(max(0.0, at - time.monotonic())):
                return await step
        except TimeoutError:
            raise _Cut("stalled", progress.explain(rule, self.policy, timeout)) from None

    def _failure(self, cut: _Cut, seconds: float, tokens: int, retries: int) -> LLMCallError:
        where = f"model {self.model!r} at {self.api_base}"
        if cut.kind == "stalled":
            outcome, error = "stalled", LLMStalled(
                f"LLM stalled: {cut.why}; cut after {seconds:.1f} s with {tokens} tokens received ({where}). "
                "Not retried: the attempt can be re-queued.", seconds, tokens, self.model, self.api_base)
        elif cut.kind == "infra":
            outcome, error = "infra", LLMUnavailable(
                f"LLM endpoint unavailable: {cut.why}; gave up after {retries + 1} attempt(s), {seconds:.1f} s, "
                f"{tokens} tokens ({where}). Check that the server is up and api_base is right, or raise "
                "llm.retries / llm.retry_delay.", seconds, tokens, self.model, self.api_base)
        else:
            outcome, error = "invalid", LLMRequestRejected(
                f"LLM request rejected ({cut.why}) by {where}: the configuration is at fault, not the design. "
                "Check the model name, api_key and generation settings (max_tokens, temperature, top_p).",
                seconds, tokens, self.model, self.api_base)
        self.last_call = CallStats(seconds, tokens, retries, outcome)
        return error


def _chunk_text(chunk: Any) -> tuple[str, int] | None:
    """(answer text, characters of progress) of a chunk; None for one without choices (e.g. usage only)."""
    choices = getattr(chunk, "choices", None)
    if not choices:
        return None
    try:
        delta = choices[0].delta
        content = getattr(delta, "content", None) or ""
        # Reasoning servers (vLLM, DeepSeek, OpenRouter) stream thinking separately: progress, not answer.
        reasoning = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None) or ""
    except (AttributeError, IndexError, KeyError, TypeError) as err:
        raise _Cut("infra", f"malformed response: unusable chunk ({type(err).__name__}: {err})") from err
    if not isinstance(content, str) or not isinstance(reasoning, str):
        raise _Cut("infra", f"malformed response: chunk content is {type(content).__name__}, not text")
    return content, len(content) + len(reasoning)


def _status_detail(err: openai.APIStatusError) -> str:
    body = err.body  # the SDK keeps the "error" object of an OpenAI-style error response here
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {err.status_code}: {message or err.message}"


async def _quietly(closing: Awaitable[Any]) -> None:
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await closing
    except Exception as err:  # the call's outcome is already decided; a failed close must not replace it
        log.debug("closing the LLM stream failed: %s", err)


def init_streaming_client(model_cfg: LLMModelConfig, policy: StallPolicy | None = None) -> StreamingLLM:
    """OpenEvolve's ``init_client`` hook; use ``functools.partial(init_streaming_client, policy=...)``."""
    return StreamingLLM(model_cfg, policy)
