"""Inference clients through their real SDKs: Anthropic and OpenAI-compatible against the local HTTP double,
Bedrock Converse against botocore's Stubber (moto has no `converse`) and over the wire against the double,
and the local client on the tiny model built on the spot."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.doubles.chat_server import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    ChatDouble,
    answer,
    failing,
    hang,
    rate_limited,
)
from workbench.errors import InvalidInput, WorkbenchError
from workbench.providers import local_generate
from workbench.providers.bedrock_converse import BedrockConverseClient
from workbench.providers.inference import (
    ChatMessage,
    ClientError,
    ClientKind,
    InferenceClient,
    InferenceRequest,
    InferenceResponse,
    NotConfigured,
    RateLimited,
    ServerError,
    TimedOut,
    client_for,
    client_status,
    retry_after_seconds,
)
from workbench.providers.openai_chat import OpenAIChatClient, default_max_tokens_field

HTTP_KINDS = ["anthropic", "openai", "bedrock"]
CLIENT_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
HOSTILE = {
    "html": "<h1>Title</h1><p onclick=\"steal()\">a &amp; b</p><iframe src='//evil'></iframe>",
    "script": "<script>alert(document.cookie)</script>\n'; DROP TABLE outputs;-- {{ 7*7 }} ${x}",
    "long": "A" * 50_000 + "\u00e9\u4e2d\U0001f600 " + "<b>x</b>" * 6_250,
}


def ask(model: str, text: str = "what colour is the sky ?", **settings: Any) -> InferenceRequest:
    return InferenceRequest(model=model, messages=(ChatMessage(role="user", content=text),), **settings)


@pytest.fixture
def no_client_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment where no client is configured: no keys, no AWS files, no instance metadata lookups."""
    for name in CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture(scope="module")
def served() -> Iterator[ChatDouble]:
    with ChatDouble() as double:
        yield double


@pytest.fixture
def double(served: ChatDouble) -> ChatDouble:
    served.reset()
    return served


def point_at(kind: str, double: ChatDouble, env: pytest.MonkeyPatch) -> None:
    """Set the variables a user would set, with the double's address as the endpoint."""
    if kind == "anthropic":
        env.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        env.setenv("ANTHROPIC_BASE_URL", double.anthropic_base_url)
    elif kind == "openai":
        env.setenv("OPENAI_API_KEY", OPENAI_KEY)
        env.setenv("OPENAI_BASE_URL", double.openai_base_url)
    else:
        env.setenv("AWS_ENDPOINT_URL", double.root_url)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=HTTP_KINDS)
def over_http(request: pytest.FixtureRequest, double: ChatDouble, no_client_variables: pytest.MonkeyPatch) -> InferenceClient:
    """Each HTTP client as `client_for` builds it from the environment, pointed at the double."""
    point_at(request.param, double, no_client_variables)
    return client_for(request.param)


# --- the common contract, every HTTP client -------------------------------------------------------------


def test_answer_reports_the_providers_counts_stop_reason_and_request_id(over_http: InferenceClient, double: ChatDouble) -> None:
    double.script("m-1", answer("the sky is blue", usage=(123, 45), delay_s=0.05))

    response = over_http.complete(ask("m-1"))

    assert isinstance(response, InferenceResponse) and response.kind == over_http.kind
    assert response.text == "the sky is blue"
    assert (response.input_tokens, response.output_tokens) == (123, 45)  # as reported, not counted here
    assert response.model == "m-1"
    assert response.stop_reason == {"openai": "stop"}.get(over_http.kind, "end_turn")
    assert response.request_id is not None and response.request_id.startswith("req_double_")
    assert 50 <= response.latency_ms < 30_000  # milliseconds: the double waited 50 ms
    assert double.calls == 1


def test_system_turns_and_settings_reach_the_provider_in_its_own_shape(over_http: InferenceClient, double: ChatDouble) -> None:
    request = InferenceRequest(
        model="m-2", system="answer with one word",
        messages=(ChatMessage(role="user", content="sky?"), ChatMessage(role="assistant", content="blue"),
                  ChatMessage(role="user", content="grass?")),
        temperature=0.3, top_p=0.9, max_tokens=64, stop=("END",),
    )
    over_http.complete(request)

    body = double.received[-1].body
    turns = [("user", "sky?"), ("assistant", "blue"), ("user", "grass?")]
    if over_http.kind == ClientKind.ANTHROPIC:
        assert body == {"model": "m-2", "system": "answer with one word", "max_tokens": 64, "stop_sequences": ["END"],
                        "temperature": 0.3, "top_p": 0.9, "messages": [{"role": r, "content": c} for r, c in turns]}
    elif over_http.kind == ClientKind.OPENAI:
        assert body == {"model": "m-2", "max_tokens": 64, "stop": ["END"], "temperature": 0.3, "top_p": 0.9,
                        "messages": [{"role": "system", "content": "answer with one word"},
                                     *({"role": r, "content": c} for r, c in turns)]}
    else:
        assert double.received[-1].model == "m-2"
        assert body == {"system": [{"text": "answer with one word"}],
                        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
                        "messages": [{"role": r, "content": [{"text": c}]} for r, c in turns]}


def test_unset_sampling_settings_are_left_to_the_provider(over_http: InferenceClient, double: ChatDouble) -> None:
    """Newer Claude models refuse any temperature, so None must mean 'not sent', on every client."""
    over_http.complete(ask("m-3"))

    sent = str(double.received[-1].body)
    assert "temperature" not in sent and "top_p" not in sent and "topP" not in sent


def test_max_tokens_cut_is_reported_as_such(over_http: InferenceClient, double: ChatDouble) -> None:
    double.script("m-4", answer("one two three four five"))

    response = over_http.complete(ask("m-4", max_tokens=2))

    assert response.text == "one two" and response.hit_max_tokens
    assert response.stop_reason == ("length" if over_http.kind == ClientKind.OPENAI else "max_tokens")


@pytest.mark.parametrize("retry_after, expected", [("7", 7.0), (None, None)])
def test_rate_limit_is_rate_limited_with_the_wait_the_provider_asked_for(
    over_http: InferenceClient, double: ChatDouble, retry_after: str | None, expected: float | None
) -> None:
    double.script("busy", rate_limited(retry_after, message="Too many requests for this organization"))

    with pytest.raises(RateLimited, match="Too many requests for this organization") as caught:
        over_http.complete(ask("busy"))

    error = caught.value
    assert error.retry_after_s == expected and error.retryable
    assert error.status_code == 429 and error.provider_message == "Too many requests for this organization"
    assert error.kind == over_http.kind and error.model == "busy"
    assert error.request_id is not None and error.request_id in str(error)


@pytest.mark.parametrize("status", [500, 503])
def test_server_failure_is_server_error(over_http: InferenceClient, double: ChatDouble, status: int) -> None:
    double.script("down", failing(status, "The service is temporarily overloaded"))

    with pytest.raises(ServerError, match=f"The service is temporarily overloaded.*HTTP {status}") as caught:
        over_http.complete(ask("down"))
    assert caught.value.retryable and caught.value.status_code == status


@pytest.mark.parametrize("status, said", [
    (400, "max_tokens: 999999 > 8192, which is the maximum allowed number of output tokens"),
    (404, "model: claude-no-such-model"),
])
def test_refusal_is_client_error_with_the_providers_message(over_http: InferenceClient, double: ChatDouble, status: int,
                                                            said: str) -> None:
    double.script("claude-no-such-model", failing(status, said))

    with pytest.raises(ClientError) as caught:
        over_http.complete(ask("claude-no-such-model"))

    error = caught.value
    assert error.provider_message == said and said in str(error) and "claude-no-such-model" in str(error)
    assert error.status_code == status and not error.retryable


def test_no_answer_within_the_timeout_is_timed_out(over_http: InferenceClient, double: ChatDouble) -> None:
    double.script("stuck", hang(30))
    started = time.monotonic()

    with pytest.raises(TimedOut, match="stuck") as caught:
        over_http.complete(ask("stuck", timeout_s=0.3))

    assert caught.value.retryable
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [429, 500])
def test_clients_never_retry_so_the_caller_counts_every_attempt(over_http: InferenceClient, double: ChatDouble,
                                                                status: int) -> None:
    double.script_next(failing(status), times=3)

    with pytest.raises(RateLimited if status == 429 else ServerError):
        over_http.complete(ask("once"))
    assert double.calls == 1


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_output_comes_back_unchanged_as_text(over_http: InferenceClient, double: ChatDouble, name: str) -> None:
    double.script("hostile", answer(HOSTILE[name]))

    response = over_http.complete(ask("hostile", max_tokens=100_000))

    assert response.text == HOSTILE[name]


def test_many_concurrent_calls_are_each_answered_once(over_http: InferenceClient, double: ChatDouble) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda i: over_http.complete(ask("echo", f"question {i}")).text, range(40)))

    assert texts == [f"question {i}" for i in range(40)]
    assert double.calls == 40


# --- Anthropic ------------------------------------------------------------------------------------------------


def test_anthropic_without_a_key_names_the_variable(no_client_variables: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotConfigured, match="set ANTHROPIC_API_KEY") as caught:
        client_for("anthropic")
    assert caught.value.setting == "ANTHROPIC_API_KEY"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_rejected_key_is_not_configured_naming_the_variable(kind: str, double: ChatDouble) -> None:
    if kind == "anthropic":
        client = client_for(kind, api_key="sk-ant-wrong", base_url=double.anthropic_base_url)
    else:
        client = client_for(kind, api_key="sk-wrong", base_url=double.openai_base_url)

    with pytest.raises(NotConfigured, match=r"HTTP 401.*set (ANTHROPIC|OPENAI)_API_KEY") as caught:
        client.complete(ask("m"))
    assert caught.value.setting == f"{kind.upper()}_API_KEY"


def test_anthropic_overloaded_529_is_server_error(double: ChatDouble) -> None:
    client = client_for("anthropic", api_key=ANTHROPIC_KEY, base_url=double.anthropic_base_url)
    double.script("claude", failing(529, "Overloaded"))

    with pytest.raises(ServerError, match="Overloaded.*HTTP 529, overloaded_error"):
        client.complete(ask("claude"))


# --- OpenAI-compatible --------------------------------------------------------------------------------------


def test_openai_needs_a_key_or_a_base_url(no_client_variables: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotConfigured, match="set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL") as caught:
        client_for("openai")
    assert caught.value.setting == "OPENAI_API_KEY"


def test_local_server_without_a_key_gets_a_placeholder(no_client_variables: pytest.MonkeyPatch, double: ChatDouble) -> None:
    no_client_variables.setenv("OPENAI_BASE_URL", double.openai_base_url)

    response = client_for("openai").complete(ask("llama3"))

    assert response.text == "what colour is the sky ?"
    assert double.received[-1].headers["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize("url, field", [
    ("https://api.openai.com/v1", "max_completion_tokens"),
    ("https://my-resource.openai.azure.com/openai/v1", "max_completion_tokens"),
    ("http://localhost:11434/v1", "max_tokens"),
    ("http://vllm.internal:8000/v1", "max_tokens"),
])
def test_openai_itself_gets_max_completion_tokens_other_servers_max_tokens(url: str, field: str) -> None:
    assert default_max_tokens_field(url) == field


def test_max_tokens_field_can_be_chosen(double: ChatDouble) -> None:
    client = OpenAIChatClient.from_environment(api_key=OPENAI_KEY, base_url=double.openai_base_url,
                                               max_tokens_field="max_completion_tokens")
    client.complete(ask("gpt", max_tokens=12))
    assert double.received[-1].body["max_completion_tokens"] == 12 and "max_tokens" not in double.received[-1].body


def test_server_that_reports_no_usage_gives_no_counts(double: ChatDouble) -> None:
    client = client_for("openai", api_key=OPENAI_KEY, base_url=double.openai_base_url)
    double.script("no-usage", answer("fine", omit_usage=True))

    response = client.complete(ask("no-usage"))

    assert response.text == "fine" and response.input_tokens is None and response.output_tokens is None


def test_unreachable_server_is_server_error_saying_so() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for("openai", base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ServerError, match=f"could not reach http://127.0.0.1:{port}/v1.*is the server running"):
        client.complete(ask("llama3", timeout_s=5))


# --- Bedrock Converse, against botocore's Stubber ------------------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[tuple[BedrockConverseClient, Stubber]]:
    runtime = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
    with Stubber(runtime) as stubber:
        yield BedrockConverseClient(client=runtime), stubber
        stubber.assert_no_pending_responses()


CUSTOM_MODEL = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/a1b2c3d4e5f6"


def test_converse_answer_as_the_api_shapes_it(stubbed: tuple[BedrockConverseClient, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "thinking..."}}},
                {"text": "The sky "}, {"text": "is blue."},
            ]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 31, "outputTokens": 7, "totalTokens": 38},
            "metrics": {"latencyMs": 412},
            "ResponseMetadata": {"RequestId": "5f8a-request", "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
        },
        expected_params={
            "modelId": CUSTOM_MODEL,
            "system": [{"text": "be brief"}],
            "messages": [{"role": "user", "content": [{"text": "what colour is the sky ?"}]}],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.0, "stopSequences": ["\n\n"]},
        },
    )

    response = client.complete(ask(CUSTOM_MODEL, system="be brief", max_tokens=50, temperature=0.0, stop=("\n\n",)))

    assert response.text == "The sky is blue."
    assert (response.input_tokens, response.output_tokens) == (31, 7)
    assert response.stop_reason == "end_turn" and response.request_id == "5f8a-request"
    assert response.model == CUSTOM_MODEL and response.kind == ClientKind.BEDROCK


@pytest.mark.parametrize("code, status, expected", [
    ("ThrottlingException", 429, RateLimited),
    ("ModelNotReadyException", 429, RateLimited),
    ("ModelTimeoutException", 408, TimedOut),
    ("ValidationException", 400, ClientError),
    ("ResourceNotFoundException", 404, ClientError),
    ("AccessDeniedException", 403, ClientError),
    ("ModelErrorException", 424, ServerError),
    ("InternalServerException", 500, ServerError),
    ("ServiceUnavailableException", 503, ServerError),
    ("UnrecognizedClientException", 403, NotConfigured),
])
def test_converse_errors_map_to_typed_errors_keeping_the_message(stubbed: tuple[BedrockConverseClient, Stubber], code: str,
                                                                 status: int, expected: type[Exception]) -> None:
    client, stubber = stubbed
    said = f"{code} says: the model identifier provided is invalid, or throttled, or busy"
    stubber.add_client_error("converse", service_error_code=code, service_message=said, http_status_code=status,
                             response_meta={"RequestId": "req-aws-1"})

    with pytest.raises(expected) as caught:
        client.complete(ask("amazon.nova-micro-v1:0"))

    error = caught.value
    assert type(error) is expected
    assert said in str(error) and code in str(error) and "req-aws-1" in str(error)
    assert error.status_code == status and error.provider_message == said


def test_converse_parameters_botocore_refuses_are_client_errors_never_sent() -> None:
    from botocore.exceptions import ParamValidationError

    from workbench.providers.bedrock_converse import translate

    error = translate(ParamValidationError(report="Invalid length for parameter modelId, value: 0"), "m")

    assert isinstance(error, ClientError) and "refused before sending" in str(error) and "modelId" in str(error)


def test_bedrock_without_region_or_credentials_names_the_variable(no_client_variables: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotConfigured, match="AWS_DEFAULT_REGION") as caught:
        client_for("bedrock")
    assert caught.value.setting == "AWS_DEFAULT_REGION"

    no_client_variables.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(NotConfigured, match="AWS_ACCESS_KEY_ID") as caught:
        client_for("bedrock")
    assert caught.value.setting == "AWS_ACCESS_KEY_ID"


# --- registry and status --------------------------------------------------------------------------------------


def test_unknown_client_kind_lists_the_choices() -> None:
    with pytest.raises(InvalidInput, match="unknown model client 'gemini'; choose one of anthropic, bedrock, openai, local"):
        client_for("gemini")


def test_status_without_variables_says_what_to_set_and_never_raises(no_client_variables: pytest.MonkeyPatch) -> None:
    statuses = {status.kind: status for status in client_status()}

    assert list(statuses) == [ClientKind.ANTHROPIC, ClientKind.BEDROCK, ClientKind.OPENAI, ClientKind.LOCAL]
    assert not statuses[ClientKind.ANTHROPIC].configured and statuses[ClientKind.ANTHROPIC].setting == "ANTHROPIC_API_KEY"
    assert not statuses[ClientKind.OPENAI].configured and statuses[ClientKind.OPENAI].setting == "OPENAI_API_KEY"
    assert "OPENAI_BASE_URL" in statuses[ClientKind.OPENAI].detail
    assert not statuses[ClientKind.BEDROCK].configured and statuses[ClientKind.BEDROCK].setting == "AWS_DEFAULT_REGION"
    local = statuses[ClientKind.LOCAL]
    assert local.configured == (not local_generate.missing_packages())


def test_status_with_variables_names_where_requests_go(no_client_variables: pytest.MonkeyPatch, double: ChatDouble) -> None:
    for kind in HTTP_KINDS:
        point_at(kind, double, no_client_variables)

    statuses = {status.kind: status for status in client_status()}

    assert statuses[ClientKind.ANTHROPIC].configured and double.anthropic_base_url in statuses[ClientKind.ANTHROPIC].detail
    assert statuses[ClientKind.OPENAI].configured and double.openai_base_url in statuses[ClientKind.OPENAI].detail
    assert statuses[ClientKind.BEDROCK].configured and "us-east-1" in statuses[ClientKind.BEDROCK].detail
    assert double.root_url in statuses[ClientKind.BEDROCK].detail
    assert all(status.setting is None for status in statuses.values() if status.configured)


def test_status_reports_a_broken_setting_instead_of_raising(no_client_variables: pytest.MonkeyPatch) -> None:
    no_client_variables.setenv("AWS_PROFILE", "no-such-profile")

    bedrock = next(status for status in client_status() if status.kind == ClientKind.BEDROCK)

    assert not bedrock.configured and bedrock.setting == "AWS_PROFILE" and "no-such-profile" in bedrock.detail


def test_local_status_names_the_extra_when_packages_are_missing(no_client_variables: pytest.MonkeyPatch) -> None:
    monkeypatch = no_client_variables
    monkeypatch.setattr(local_generate, "REQUIRED", ("torch", "no_such_package_for_workbench"))

    local = next(status for status in client_status() if status.kind == ClientKind.LOCAL)
    assert not local.configured and local.setting == "pip install -e '.[train]'"
    with pytest.raises(NotConfigured, match=r"no_such_package_for_workbench: pip install -e '.\[train\]'"):
        client_for("local")


# --- request and helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"messages": ()},
    {"temperature": 2.5},
    {"max_tokens": 0},
    {"top_p": 0},
    {"timeout_s": 0},
    {"model": ""},
])
def test_request_refuses_impossible_settings(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"model": "m", "messages": (ChatMessage(role="user", content="hi"),), **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        InferenceRequest(**fields)


def test_errors_are_workbench_errors_a_page_can_show() -> None:
    for error_type in (RateLimited, TimedOut, ServerError, ClientError):
        assert issubclass(error_type, WorkbenchError)
    assert issubclass(NotConfigured, WorkbenchError)


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"Retry-After": "20"}, 20.0),
    ({"retry-after": email.utils.formatdate(1_000_030, usegmt=True)}, 30.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_reads_milliseconds_seconds_and_dates(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers, now=1_000_000) == expected


# --- local transformers model (the tiny model; no download) -------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model, and a LoRA adapter over it with non-zero weights, so it changes what the model says."""
    torch = pytest.importorskip("torch", reason="the local client needs the train extra (torch)")
    pytest.importorskip("transformers", reason="the local client needs the train extra (transformers)")
    pytest.importorskip("peft", reason="the local client needs the train extra (peft)")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tests.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_model(root / "model")
    torch.manual_seed(1)
    lora = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False,
                      task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), lora).save_pretrained(str(root / "adapter"))
    return {"base": base, "adapter": root / "adapter", "root": root}


@pytest.fixture
def local(tiny: dict[str, Path]) -> Iterator[local_generate.LocalClient]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads, and they fight the other tests' processes
    yield local_generate.LocalClient.from_environment()
    torch.set_num_threads(threads)


def test_local_base_model_answers_with_the_tokenizers_counts(local: local_generate.LocalClient, tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    request = ask(str(tiny["base"]), system="answer with one word", max_tokens=5)
    response = local.complete(request)

    tokenizer = AutoTokenizer.from_pretrained(str(tiny["base"]))
    prompt = ("<|im_start|>system\nanswer with one word<|im_end|>\n<|im_start|>user\nwhat colour is the sky ?<|im_end|>\n"
              "<|im_start|>assistant\n")
    assert local_generate.render(local.load(str(tiny["base"])).tokenizer, request) == prompt  # ChatML: no template of its own
    assert response.input_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert response.output_tokens is not None and 1 <= response.output_tokens <= 5
    assert response.stop_reason in ("end_turn", "max_tokens") and response.kind == ClientKind.LOCAL
    assert response.model == str(tiny["base"]) and response.latency_ms > 0
    assert local.complete(request).text == response.text  # greedy when no temperature: the same answer twice


def test_local_adapter_is_applied_over_its_base(local: local_generate.LocalClient, tiny: dict[str, Path]) -> None:
    from peft import PeftModel

    base = local.complete(ask(str(tiny["base"]), max_tokens=8))
    tuned = local.complete(ask(str(tiny["adapter"]), max_tokens=8))

    assert isinstance(local.load(str(tiny["adapter"])).model, PeftModel)
    assert tuned.input_tokens == base.input_tokens  # same tokenizer (the base's: the adapter folder has none)
    assert tuned.text != base.text


def test_local_uses_the_tokenizers_own_chat_template(local: local_generate.LocalClient, tiny: dict[str, Path]) -> None:
    import shutil

    from transformers import AutoTokenizer

    folder = tiny["root"] / "templated"
    if not folder.exists():
        shutil.copytree(tiny["base"], folder)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
        tokenizer.save_pretrained(str(folder))

    request = ask(str(folder), system="answer with one word", max_tokens=1)
    prompt = local_generate.render(local.load(str(folder)).tokenizer, request)
    assert prompt == "answer with one word what colour is the sky ? "
    assert local.complete(request).input_tokens == len(prompt.split())  # a word-level tokenizer: a token a word


def test_local_sampling_and_stop_sequences(local: local_generate.LocalClient, tiny: dict[str, Path]) -> None:
    greedy = local.complete(ask(str(tiny["base"]), max_tokens=8))
    first_word = greedy.text.split()[0]

    cut = local.complete(ask(str(tiny["base"]), max_tokens=8, stop=(first_word,)))
    sampled = local.complete(ask(str(tiny["base"]), max_tokens=8, temperature=1.0, top_p=0.9))

    assert cut.text == greedy.text[: greedy.text.index(first_word)] and cut.stop_reason == "stop_sequence"
    assert isinstance(sampled.text, str) and sampled.output_tokens is not None and sampled.output_tokens <= 8


def test_local_generation_past_the_timeout_is_timed_out(local: local_generate.LocalClient, tiny: dict[str, Path]) -> None:
    local.load(str(tiny["base"]))  # loading is not what this test times
    with pytest.raises(TimedOut, match="timeout"):
        local.complete(ask(str(tiny["base"]), max_tokens=400, timeout_s=0.0001))


@pytest.mark.parametrize("what", ["missing", "no-weights"])
def test_local_folder_that_is_not_a_model_is_client_error(local: local_generate.LocalClient, tmp_path: Path, what: str) -> None:
    folder = tmp_path / "empty"
    if what == "no-weights":
        folder.mkdir()
    with pytest.raises(ClientError, match="not a folder" if what == "missing" else "has no config.json"):
        local.complete(ask(str(folder)))


def test_local_adapter_with_a_base_model_not_on_disk_is_refused_without_download(
    local: local_generate.LocalClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "org/not-in-the-cache", "peft_type": "LORA"}')

    with pytest.raises(ClientError, match="org/not-in-the-cache.*nothing is downloaded"):
        local.complete(ask(str(adapter)))
