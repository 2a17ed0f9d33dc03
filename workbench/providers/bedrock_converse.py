"""Models on Amazon Bedrock through boto3 `bedrock-runtime` `converse`: Claude, Nova, Llama, custom models by ARN.

API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html. Facts relied
on, checked against botocore's service model for `bedrock-runtime`:

- `POST /model/{modelId}/converse` with `messages=[{"role", "content": [{"text"}]}]`, `system=[{"text"}]` and
  `inferenceConfig={"maxTokens", "temperature", "topP", "stopSequences"}`; `modelId` may be a model id, an
  inference profile, or the ARN of a provisioned or custom model.
- The answer: `output.message.content` (text blocks among others), `stopReason` (`end_turn | tool_use |
  max_tokens | stop_sequence | guardrail_intervened | content_filtered | ...`), `usage.inputTokens` /
  `usage.outputTokens`, `metrics.latencyMs`, and the request id in `ResponseMetadata.RequestId`.
- Errors: ValidationException 400, AccessDeniedException 403, ResourceNotFoundException 404,
  ModelTimeoutException 408, ModelErrorException 424, ThrottlingException 429, ModelNotReadyException 429,
  InternalServerException 500, ServiceUnavailableException 503.

Region, credentials and endpoint come from boto3's own chain (`AWS_PROFILE`, `AWS_DEFAULT_REGION`,
`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`...). botocore's timeout is per client, not per
call, so one client is kept per timeout value, each with retries off (`total_max_attempts=1`); its
`read_timeout` bounds each wait for bytes, which for a non-streaming call is the wait for the answer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from workbench.providers.aws import CREDENTIAL_CODES, CREDENTIALS_HINT, REGION_HINT, THROTTLING_CODES
from workbench.providers.inference import (
    ClientError,
    ClientKind,
    ClientStatus,
    InferenceRequest,
    InferenceResponse,
    NotConfigured,
    RateLimited,
    ServerError,
    TimedOut,
    describe_failure,
    elapsed_ms,
    retry_after_seconds,
)

SERVICE = "bedrock-runtime"
KIND = ClientKind.BEDROCK
RATE_LIMIT_CODES = THROTTLING_CODES | {"ModelNotReadyException", "ServiceQuotaExceededException"}
"""ModelNotReadyException: the model is being loaded (a custom model on demand); retrying later works."""
SERVER_FAULT_CODES = frozenset({"ModelErrorException", "InternalServerException", "ServiceUnavailableException"})
"""ModelErrorException is a 424, but it is the model failing while processing, not the request being wrong."""
CREDENTIAL_REJECTED = CREDENTIAL_CODES - {"AccessDenied", "AccessDeniedException"}
"""AccessDeniedException is kept as ClientError: on Bedrock it usually means the model's access is not granted,
which AWS's message says, not that the credentials are wrong."""


class BedrockConverseClient:
    """Send requests to Bedrock's Converse API; clients are thread-safe and shared by every thread."""

    kind = KIND

    def __init__(self, *, session: Any = None, client: Any = None, max_pool_connections: int = 32) -> None:
        """Give either a boto3 `session` (a client per timeout is built from it) or one ready `client`.

        A ready client (a test's Stubber, or one built with a custom botocore Config) is used for every
        request, whatever its timeout: the timeout then is that client's own.
        """
        if session is None and client is None:
            raise ValueError("give a boto3 session or a bedrock-runtime client")
        self._session = session
        self._fixed = client
        self._max_pool_connections = max_pool_connections
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, *, region: str | None = None, profile: str | None = None,
                         max_pool_connections: int = 32) -> BedrockConverseClient:
        """Build from boto3's chain, refusing now (naming what to set) when no region or credentials are found."""
        return cls(session=configured_session(region=region, profile=profile), max_pool_connections=max_pool_connections)

    def runtime(self, timeout_s: float) -> Any:
        """The bedrock-runtime client to use for a request with this timeout."""
        if self._fixed is not None:
            return self._fixed
        with self._lock:  # boto3 sessions are not thread-safe; building clients happens under the lock
            if timeout_s not in self._clients:
                from botocore.config import Config

                config = Config(read_timeout=timeout_s, connect_timeout=min(timeout_s, 10.0),
                                retries={"total_max_attempts": 1, "mode": "standard"},
                                max_pool_connections=self._max_pool_connections)
                self._clients[timeout_s] = self._session.client(SERVICE, config=config)
            return self._clients[timeout_s]

    def complete(self, request: InferenceRequest) -> InferenceResponse:
        """Call `converse` once and report what Bedrock answered."""
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError as BotoClientError

        client = self.runtime(request.timeout_s)
        started = time.perf_counter()
        try:
            answer = client.converse(**build_params(request))
        except (BotoClientError, BotoCoreError) as exc:
            raise translate(exc, request.model) from exc
        latency = elapsed_ms(started)
        blocks = ((answer.get("output") or {}).get("message") or {}).get("content") or []
        usage = answer.get("usage") or {}
        return InferenceResponse(
            kind=KIND, text="".join(block["text"] for block in blocks if "text" in block),
            input_tokens=usage.get("inputTokens"), output_tokens=usage.get("outputTokens"), latency_ms=latency,
            model=request.model, stop_reason=answer.get("stopReason"),
            request_id=(answer.get("ResponseMetadata") or {}).get("RequestId"),
        )


def build_params(request: InferenceRequest) -> dict[str, Any]:
    """The keyword arguments of `converse` for `request` (sampling settings only when set)."""
    inference: dict[str, Any] = {"maxTokens": request.max_tokens}
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    params: dict[str, Any] = {
        "modelId": request.model,
        "messages": [{"role": m.role.value, "content": [{"text": m.content}]} for m in request.messages],
        "inferenceConfig": inference,
    }
    if request.system:
        params["system"] = [{"text": request.system}]
    return params


def translate(exc: Exception, model: str) -> Exception:
    """Map a botocore error to the workbench's typed errors, keeping AWS's code, message and request id."""
    from botocore.exceptions import ClientError as BotoClientError
    from botocore.exceptions import (
        ConnectTimeoutError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return TimedOut(describe_failure(KIND, model, f"no answer within the timeout ({exc})"), kind=KIND, model=model)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return NotConfigured(f"No usable AWS credentials for Bedrock: {CREDENTIALS_HINT}", setting="AWS_ACCESS_KEY_ID",
                             kind=KIND, model=model)
    if isinstance(exc, NoRegionError):
        return NotConfigured(f"No AWS region for Bedrock: {REGION_HINT}", setting="AWS_DEFAULT_REGION", kind=KIND, model=model)
    if isinstance(exc, ParamValidationError):
        return ClientError(describe_failure(KIND, model, f"refused before sending: {exc}"), kind=KIND, model=model,
                           provider_message=str(exc))
    if not isinstance(exc, BotoClientError):
        return ServerError(describe_failure(KIND, model, f"could not reach Bedrock: {exc}"), kind=KIND, model=model)
    error = exc.response.get("Error") or {}
    meta = exc.response.get("ResponseMetadata") or {}
    code, said = str(error.get("Code", "")), str(error.get("Message", "")).strip() or "no message"
    status_code = meta.get("HTTPStatusCode")
    request_id = meta.get("RequestId")
    details: dict[str, Any] = {"kind": KIND, "model": model, "status_code": status_code, "provider_message": said,
                               "request_id": request_id}
    message = describe_failure(KIND, model, said, status_code=status_code, error_type=code, request_id=request_id)
    if code in RATE_LIMIT_CODES or status_code == 429:
        return RateLimited(message, retry_after_s=retry_after_seconds(meta.get("HTTPHeaders")), **details)
    if code == "ModelTimeoutException":
        return TimedOut(message, **details)
    if code in CREDENTIAL_REJECTED:
        return NotConfigured(f"{message}; AWS rejected the credentials: {CREDENTIALS_HINT}", setting="AWS_ACCESS_KEY_ID",
                             **details)
    if code in SERVER_FAULT_CODES or (isinstance(status_code, int) and status_code >= 500):
        return ServerError(message, **details)
    return ClientError(message, **details)


def configured_session(*, region: str | None = None, profile: str | None = None) -> Any:
    """A boto3 session with a region and credentials, or NotConfigured naming the variable to set."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise NotConfigured(f"AWS profile {exc.kwargs.get('profile')!r} is not in ~/.aws/config; {CREDENTIALS_HINT}",
                            setting="AWS_PROFILE", kind=KIND) from exc
    if not session.region_name:
        raise NotConfigured(f"No AWS region for Bedrock: {REGION_HINT}", setting="AWS_DEFAULT_REGION", kind=KIND)
    if session.get_credentials() is None:
        raise NotConfigured(f"No AWS credentials for Bedrock: {CREDENTIALS_HINT}", setting="AWS_ACCESS_KEY_ID", kind=KIND)
    return session


def from_environment(**options: Any) -> BedrockConverseClient:
    return BedrockConverseClient.from_environment(**options)


def status() -> ClientStatus:
    """Configured when boto3's chain yields a region and credentials; the detail names region and endpoint."""
    try:
        session = configured_session()
    except NotConfigured as exc:
        return ClientStatus(kind=KIND, configured=False, detail=str(exc), setting=exc.setting)
    endpoint = session.client(SERVICE).meta.endpoint_url
    return ClientStatus(kind=KIND, configured=True, detail=f"region {session.region_name}; requests go to {endpoint}")
