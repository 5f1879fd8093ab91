"""What a step saw and said, where LLM backends look for it: GenAI content and OpenInference.

Part of the export mapping (stored → **exported**). Backends built for LLM traces (Arize
Phoenix, Langfuse, …) show a span's prompt and answer from OpenInference's `input.value` /
`output.value` and `llm.*_messages`, or from the GenAI conventions' `gen_ai.input.messages`
/ `gen_ai.output.messages`. edgetrace keeps payloads in the session as blobs and sends
previews by default, so the rule is:

- always: what the previews already carry, under the names these backends read — an
  input's payload, a model's answer, a decision and the rules that fired, an actuation's
  arguments — plus the OpenInference span kind (`LLM` for models, `GUARDRAIL` for rule
  decisions that gate an actuation, `TOOL` for actuations, `CHAIN` for the rest);
- only with content capture (`--capture-content`, or the GenAI instrumentations'
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`): the full payloads read from the
  session's blobs — a model's prompt (a text input, or the text under one of `PROMPT_KEYS`
  of a dict input) and a decision's input document — as GenAI messages and OpenInference
  values, each capped at `content_limit` UTF-8 bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind, Status

__all__ = ["CAPTURE_ENV", "DEFAULT_CONTENT_LIMIT", "capture_from_env", "clip_utf8", "content_attributes",
           "decoded_blob", "exception_event"]

#: The GenAI instrumentations' switch for message content, honoured as the default.
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: Largest captured content attribute, in UTF-8 bytes.
DEFAULT_CONTENT_LIMIT = 16 * 1024

BlobReader = Callable[[str], Any]

_OI_KIND = {
    SpanKind.INFER: "LLM",
    SpanKind.DECIDE: "GUARDRAIL",
    SpanKind.ACT: "TOOL",
}


def capture_from_env() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def clip_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, an ellipsis marking the cut."""
    if len(text) * 4 <= limit or len(text.encode()) <= limit:
        return text
    return text.encode()[: max(0, limit - 3)].decode("utf-8", "ignore") + "…"


def _text(value: Any) -> tuple[str, str]:
    """A value as (text, mime type): strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value, "text/plain"
    if isinstance(value, bytes):
        try:
            return value.decode(), "text/plain"
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>", "text/plain"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr, ensure_ascii=False), \
        "application/json"


#: Keys under which a model's input dict usually holds its prompt (the rest are tensors, ids).
PROMPT_KEYS = ("prompt", "text", "caption", "input", "query", "question", "content", "message")


def prompt_of(value: Any) -> Any:
    """A model input as its prompt: a dict's text under a well-known key, else the input itself."""
    if isinstance(value, dict):
        for key in PROMPT_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
    return value


def _put(out: dict[str, Any], which: str, value: Any, limit: int) -> str:
    text, mime = _text(value)
    text = clip_utf8(text, limit)
    if which == "input":
        out[attr.OI_INPUT_VALUE], out[attr.OI_INPUT_MIME_TYPE] = text, mime
    else:
        out[attr.OI_OUTPUT_VALUE], out[attr.OI_OUTPUT_MIME_TYPE] = text, mime
    return text


def _messages(role: str, text: str, limit: int, finish: str | None = None) -> str:
    """One GenAI message (JSON per the conventions' schema), its text cut so the JSON fits."""
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": clip_utf8(text, limit - 96)}]}
    if finish is not None:
        message["finish_reason"] = finish
    return json.dumps([message], separators=(",", ":"), ensure_ascii=False)


def content_attributes(span: Span, *, session_id: str, blob: BlobReader | None, capture: bool,
                       limit: int = DEFAULT_CONTENT_LIMIT) -> dict[str, Any]:
    """OpenInference (and, with `capture`, GenAI content) attributes of a native span."""
    a = span.attrs
    out: dict[str, Any] = {attr.OI_SPAN_KIND: _OI_KIND.get(span.kind, "CHAIN")}
    if session_id:
        out[attr.OI_SESSION_ID] = session_id
    out[attr.OI_METADATA] = json.dumps({"node": span.node, "seq": span.seq, "kind": span.kind.value},
                                       separators=(",", ":"))
    out[attr.OI_TAGS] = [span.node, span.kind.value]

    def full(name: str) -> Any:
        sha = span.blobs.get(name)
        if not capture or blob is None or not sha:
            return None
        return blob(sha)

    if span.kind is SpanKind.INPUT:
        payload = a.get(attr.PAYLOAD)
        if payload is not None or span.blobs.get("input"):
            _put(out, "input", full("input") if capture and span.blobs.get("input") else payload, limit)
    elif span.kind is SpanKind.INFER:
        model = str(a.get(attr.GEN_AI_REQUEST_MODEL, span.name))
        out[attr.OI_LLM_MODEL_NAME] = model
        if attr.GEN_AI_PROVIDER_NAME in a:
            out[attr.OI_LLM_PROVIDER] = str(a[attr.GEN_AI_PROVIDER_NAME])
        prompt_n, answer_n = a.get(attr.GEN_AI_USAGE_INPUT_TOKENS), a.get(attr.GEN_AI_USAGE_OUTPUT_TOKENS)
        if isinstance(prompt_n, int):
            out[attr.OI_LLM_TOKENS_PROMPT] = prompt_n
        if isinstance(answer_n, int):
            out[attr.OI_LLM_TOKENS_COMPLETION] = answer_n
        if isinstance(prompt_n, int) and isinstance(answer_n, int):
            out[attr.OI_LLM_TOKENS_TOTAL] = prompt_n + answer_n
        answer = a.get(attr.OUTPUT_TEXT)
        if answer is None:
            answer = a.get(attr.OUTPUT)
        answer_text = _put(out, "output", answer, limit) if answer is not None else ""
        prompt = full("input")
        if prompt is not None:
            prompt = prompt_of(prompt)
            prompt_text = _put(out, "input", prompt, limit)
            out[attr.GEN_AI_INPUT_MESSAGES] = _messages("user", prompt_text, limit)
            out[f"{attr.OI_LLM_INPUT_MESSAGES}.0.message.role"] = "user"
            out[f"{attr.OI_LLM_INPUT_MESSAGES}.0.message.content"] = prompt_text
            if answer is not None:
                finish = "error" if span.status is Status.ERROR else "stop"
                out[attr.GEN_AI_OUTPUT_MESSAGES] = _messages("assistant", answer_text, limit, finish)
                out[f"{attr.OI_LLM_OUTPUT_MESSAGES}.0.message.role"] = "assistant"
                out[f"{attr.OI_LLM_OUTPUT_MESSAGES}.0.message.content"] = answer_text
    elif span.kind is SpanKind.DECIDE:
        document = full("input")
        if document is not None:
            _put(out, "input", document, limit)
        if attr.DECISION in a:
            _put(out, "output", {"decision": a.get(attr.DECISION), "rules_fired": a.get(attr.RULES_FIRED, [])},
                 limit)
    elif span.kind is SpanKind.ACT:
        out[attr.OI_TOOL_NAME] = span.name
        out[attr.GEN_AI_TOOL_NAME] = span.name
        if attr.ACT_ARGS in a:
            _put(out, "input", a[attr.ACT_ARGS], limit)
    elif span.kind is SpanKind.LOG and attr.MESSAGE in a:
        _put(out, "input", a[attr.MESSAGE], limit)
    return out


def decoded_blob(read: Callable[[str], bytes | None]) -> BlobReader:
    """A blob reader giving payloads back as values: MessagePack decoded, else text, else bytes."""
    from edgetrace._codec import decode_any

    def get(sha: str) -> Any:
        try:
            data = read(sha)
        except Exception:  # a missing or damaged blob leaves the content out, never the span
            return None
        if data is None:
            return None
        try:
            return decode_any(data)
        except Exception:
            pass
        try:  # decision documents are stored as JSON
            return json.loads(data)
        except ValueError:
            return data

    return get


def exception_event(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The OTel `exception` event of a step that raised (its exception.* attributes), or None."""
    if attr.EXCEPTION_TYPE not in attrs and attr.EXCEPTION_MESSAGE not in attrs:
        return None
    return {k: attrs[k] for k in (attr.EXCEPTION_TYPE, attr.EXCEPTION_MESSAGE, attr.EXCEPTION_STACKTRACE)
            if k in attrs and attrs[k] is not None}
