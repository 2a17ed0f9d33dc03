"""Turn one Amazon Bedrock model invocation log record into a prediction.

Bedrock writes one JSON record per call when model invocation logging is on, to S3 (gzipped JSON
objects under the configured prefix) and/or CloudWatch Logs
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html). The fields
read here: `schemaType` ("ModelInvocationLog"), `timestamp`, `modelId`, `operation`, `requestId`,
`region`, `errorCode`, `requestMetadata`, `input.inputTokenCount`, `input.cacheReadInputTokenCount`,
`input.inputBodyJson`, `output.outputTokenCount`, `output.outputBodyJson` (whose Converse form
carries `metrics.latencyMs`). The bodies are the request and response of whichever API was called
(Converse, or InvokeModel with a model's native body), so the text is found by the shapes each
family uses; a body of a shape not known here is kept as compact JSON rather than dropped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from workbench.domain.predictions import MAX_TAG_CHARS, MAX_TAGS, MAX_TEXT_CHARS

SCHEMA_TYPE = "ModelInvocationLog"


class RecordError(ValueError):
    """A record that is not an invocation log record; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


SOURCE_FIELDS = {
    "ts": "timestamp",
    "model_version": "modelId",
    "input": "input.inputBodyJson",
    "output": "output.outputBodyJson",
    "tokens_in": "input.inputTokenCount",
    "tokens_cached": "input.cacheReadInputTokenCount",
    "tokens_out": "output.outputTokenCount",
    "latency_ms": "output.outputBodyJson.metrics.latencyMs",
    "tags": "requestMetadata",
    "error": "errorCode",
}
"""The record's field each prediction field comes from: an error names what the log holds, not what it became."""


class ReadRecord(NamedTuple):
    fields: dict[str, Any]
    cuts: list[str]
    """Text fields stored cut to `MAX_TEXT_CHARS`, each said with how much was cut."""


def prediction_fields(record: Any) -> dict[str, Any]:
    """Return the PredictionIn fields one invocation log record gives (validated by the caller)."""
    return read_record(record).fields


def read_record(record: Any) -> ReadRecord:
    """Return the PredictionIn fields one invocation log record gives, and what had to be cut to fit."""
    if not isinstance(record, dict):
        raise RecordError("", f"expected a JSON object (an invocation log record), got {type(record).__name__}")
    if record.get("schemaType") != SCHEMA_TYPE:
        raise RecordError("schemaType", f"expected {SCHEMA_TYPE!r}, got {record.get('schemaType')!r}: not a Bedrock "
                                        "model invocation log record")
    if not record.get("modelId"):
        raise RecordError("modelId", "missing: every invocation log record names the model it called")
    if not isinstance(record["modelId"], str):
        raise RecordError("modelId", f"expected a string (the model id or ARN), got {_kind(record['modelId'])}")
    if not record.get("timestamp"):
        raise RecordError("timestamp", "missing: a log record without its time would be stored as of today; "
                                       "every invocation log record carries `timestamp`")
    if not isinstance(record["timestamp"], str):
        raise RecordError("timestamp", f"expected an ISO-8601 string, got {_kind(record['timestamp'])}")
    given_in = record.get("input") if isinstance(record.get("input"), dict) else {}
    given_out = record.get("output") if isinstance(record.get("output"), dict) else {}
    out_body = given_out.get("outputBodyJson")
    cuts: list[str] = []
    fields: dict[str, Any] = {
        "ts": record.get("timestamp"),
        "model_version": record["modelId"],
        "input": _clip("input", body_text(given_in.get("inputBodyJson")), cuts),
        "output": _clip("output", body_text(out_body), cuts),
        "tokens_in": given_in.get("inputTokenCount"),
        "tokens_cached": given_in.get("cacheReadInputTokenCount"),
        "tokens_out": given_out.get("outputTokenCount"),
        "latency_ms": _latency(out_body),
        "tags": _tags(record),
    }
    if record.get("errorCode"):
        fields["error"] = str(record["errorCode"])
    return ReadRecord({k: v for k, v in fields.items() if v is not None}, cuts)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), f"the {type(value).__name__} {value!r}"[:80])


def body_text(body: Any) -> str | None:
    """Return the text of a request or response body, whatever model family's shape it has."""
    if body is None:
        return None
    if isinstance(body, str):
        return body
    if isinstance(body, list):  # a streamed response: one body per chunk
        parts = [t for t in (body_text(chunk) for chunk in body) if t]
        return "".join(parts) if parts else None
    if not isinstance(body, dict):
        return None
    found = _known_text(body)
    if found is not None:
        return found
    return orjson.dumps(body).decode() if body else None


def _known_text(body: dict[str, Any]) -> str | None:
    if "messages" in body:  # Converse, Anthropic messages, Nova, OpenAI-compatible
        parts = _content_text(body.get("system"))
        messages = body.get("messages")
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                parts += _content_text(message.get("content"))
        return "\n".join(parts)
    if isinstance(body.get("output"), dict):  # Converse and Nova responses
        message = body["output"].get("message")
        return "\n".join(_content_text(message.get("content") if isinstance(message, dict) else message))
    if "content" in body:  # Anthropic messages response
        return "\n".join(_content_text(body["content"]))
    if isinstance(body.get("delta"), dict):  # Anthropic stream chunk
        text = body["delta"].get("text")
        return text if isinstance(text, str) else None
    for key in ("prompt", "inputText", "message", "completion", "generation", "outputText", "text"):
        if isinstance(body.get(key), str):
            return str(body[key])
    for key in ("results", "outputs", "generations", "choices"):  # Titan, Mistral, Cohere, OpenAI-compatible
        if isinstance(body.get(key), list):
            texts = [_choice_text(item) for item in body[key]]
            return "\n".join(t for t in texts if t)
    return None


def _choice_text(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("message"), dict):
        return "\n".join(_content_text(item["message"].get("content")))
    for key in ("outputText", "text"):
        if isinstance(item.get(key), str):
            return str(item[key])
    return None


def _content_text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)]
    return []


def _latency(body: Any) -> float | None:
    metrics = body.get("metrics") if isinstance(body, dict) else None
    latency = metrics.get("latencyMs") if isinstance(metrics, dict) else None
    return float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else None


def _tags(record: dict[str, Any]) -> dict[str, str]:
    tags = {key: str(record[key])[:MAX_TAG_CHARS] for key in ("operation", "requestId", "region") if record.get(key)}
    metadata = record.get("requestMetadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            if len(tags) >= MAX_TAGS:
                break
            tags.setdefault(str(key)[:MAX_TAG_CHARS], str(value)[:MAX_TAG_CHARS])
    return tags


def _clip(field: str, text: str | None, cuts: list[str]) -> str | None:
    """Cut text to what a prediction holds (`MAX_TEXT_CHARS`), saying so: a prompt with long documents is still a call."""
    if text is None or len(text) <= MAX_TEXT_CHARS:
        return text
    cuts.append(f"{field} cut to the first {MAX_TEXT_CHARS:,} of {len(text):,} characters "
                f"({len(text) - MAX_TEXT_CHARS:,} cut); the stored text is incomplete")
    return text[:MAX_TEXT_CHARS]
