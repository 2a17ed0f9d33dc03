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

from typing import Any

import orjson

from workbench.domain.predictions import MAX_TAG_CHARS, MAX_TAGS, MAX_TEXT_CHARS

SCHEMA_TYPE = "ModelInvocationLog"


class RecordError(ValueError):
    """A record that is not an invocation log record; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def prediction_fields(record: Any) -> dict[str, Any]:
    """Return the PredictionIn fields one invocation log record gives (validated by the caller)."""
    if not isinstance(record, dict):
        raise RecordError("", f"expected a JSON object (an invocation log record), got {type(record).__name__}")
    if record.get("schemaType") != SCHEMA_TYPE:
        raise RecordError("schemaType", f"expected {SCHEMA_TYPE!r}, got {record.get('schemaType')!r}: not a Bedrock "
                                        "model invocation log record")
    if not record.get("modelId"):
        raise RecordError("modelId", "missing: every invocation log record names the model it called")
    if not record.get("timestamp"):
        raise RecordError("timestamp", "missing: a log record without its time would be stored as of today; "
                                       "every invocation log record carries `timestamp`")
    given_in = record.get("input") if isinstance(record.get("input"), dict) else {}
    given_out = record.get("output") if isinstance(record.get("output"), dict) else {}
    out_body = given_out.get("outputBodyJson")
    fields: dict[str, Any] = {
        "ts": record.get("timestamp"),
        "model_version": record["modelId"],
        "input": _clip(body_text(given_in.get("inputBodyJson"))),
        "output": _clip(body_text(out_body)),
        "tokens_in": given_in.get("inputTokenCount"),
        "tokens_cached": given_in.get("cacheReadInputTokenCount"),
        "tokens_out": given_out.get("outputTokenCount"),
        "latency_ms": _latency(out_body),
        "tags": _tags(record),
    }
    if record.get("errorCode"):
        fields["error"] = str(record["errorCode"])
    return {k: v for k, v in fields.items() if v is not None}


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


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_TEXT_CHARS]
