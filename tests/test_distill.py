"""Distillation: the seed parser and the estimate (pure), then teacher runs end to end through the real
openai SDK against the local chat double, landing in a real SQLite store and the reviewers' queue."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double, failing
from tests.helpers import WriteJsonl, chat
from workbench.domain import distill as rules
from workbench.domain.comparison import RetryPolicy
from workbench.domain.example import Role
from workbench.domain.filters import ExampleFilter
from workbench.domain.progress import Progress
from workbench.domain.templates import InferencePrice, price_for
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.providers.inference import client_for
from workbench.services import comparisons, datasets, distill, importing, review, templates
from workbench.store import Store
from workbench.store.review import QueueFilter, SourceKind

QUICK = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, failure_attempts=1)
NOVA = "amazon.nova-lite-v1:0"
"""A teacher the catalogue prices on demand, so costs are known."""
TEACHER = f"openai:{NOVA}"


# ----------------------------------------------------------------------------------------- parsing (pure)


@pytest.mark.parametrize(
    ("reply", "count", "inputs", "problem"),
    [
        ("Where is my parcel?\nCan I change my address?", 2, ["Where is my parcel?", "Can I change my address?"], None),
        ("1. Where is my parcel?\n2) Can I pay later?\n- How do refunds work?", 3,
         ["Where is my parcel?", "Can I pay later?", "How do refunds work?"], None),
        ('["first one", "second one"]', 2, ["first one", "second one"], None),
        ('```json\n["a question", "another question"]\n```', 2, ["a question", "another question"], None),
        ('{"inputs": ["from an object", {"input": "from a dict"}]}', 2, ["from an object", "from a dict"], None),
        ("Here are 2 inputs:\n\"Quoted one\"\n“Curly one”", 2, ["Quoted one", "Curly one"], None),
        ("Same thing\nsame   THING.\nOther thing", 3, ["Same thing", "Other thing"], "asked for 3 inputs, the reply held 2"),
        ("one\ntwo\nthree\nfour", 2, ["one", "two"], None),
        ('["complete item", "another complete", "cut sho', 5, ["complete item", "another complete"], "cut short"),
        ("", 3, [], "no inputs found"),
        ("[]", 3, [], "no inputs found"),
        ('<script>alert(1)</script>\n=HYPERLINK("x")', 2, ["<script>alert(1)</script>", '=HYPERLINK("x")'], None),
    ],
)
def test_parse_inputs_reads_lines_or_json_and_says_what_fell_short(reply: str, count: int, inputs: list[str],
                                                                   problem: str | None) -> None:
    parsed = rules.parse_inputs(reply, count)
    assert parsed.inputs == inputs
    if problem is None:
        assert parsed.problem is None
    else:
        assert parsed.problem is not None and problem in parsed.problem


@settings(max_examples=200, deadline=None)
@given(reply=st.text(max_size=400), count=st.integers(min_value=1, max_value=10))
def test_any_reply_parses_to_at_most_count_distinct_inputs_or_says_why_not(reply: str, count: int) -> None:
    parsed = rules.parse_inputs(reply, count)
    assert len(parsed.inputs) <= count and all(text.strip() for text in parsed.inputs)
    assert len({" ".join(t.casefold().split()).rstrip(".!?") for t in parsed.inputs}) == len(parsed.inputs)
    assert parsed.inputs or parsed.problem


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30), min_size=1, max_size=8,
                unique_by=lambda t: t.casefold()))
def test_a_json_list_of_distinct_words_reads_back_whole(words: list[str]) -> None:
    assert rules.parse_inputs(json.dumps(words), len(words)).inputs == words


def test_inputs_repeated_across_topics_are_kept_once_in_the_first_topic() -> None:
    assert rules.dedupe_across([["A", "b"], ["a.", "c"], ["B", "C "]]) == [["A", "b"], ["c"], []]


@pytest.mark.parametrize(
    ("topics", "per_topic", "error"),
    [
        ([], 3, "no seed topics"),
        (["# only a comment", "  "], 3, "no seed topics"),
        (["refunds"], 0, "inputs per topic must be 1 to 50"),
        (["refunds"], 51, "inputs per topic must be 1 to 50"),
        (["x" * 600], 2, "keep a topic under 500"),
        ([f"topic {i}" for i in range(501)], 1, "at most 500"),
    ],
)
def test_bad_seeds_are_refused(topics: list[str], per_topic: int, error: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(error)):
        rules.check_seeds(topics, per_topic)


def test_topics_are_read_one_per_line_without_repeats() -> None:
    assert rules.parse_topics("refunds\n\n# comment\n  late   parcels \nRefunds\n") == ["refunds", "late parcels"]


@pytest.mark.parametrize("text", ["gpt-4o", "nowhere:gpt", "openai:", ""])
def test_a_teacher_is_client_colon_model(text: str) -> None:
    with pytest.raises(InvalidInput, match="CLIENT:MODEL"):
        rules.parse_teacher(text)


# ----------------------------------------------------------------------------------------- estimate (pure)

PRICE = InferencePrice(model="m", label="M", input_per_1k=1.0, output_per_1k=2.0, row="t/m: per 1K", source="s", effective=None,
                       verified=True)


@pytest.mark.parametrize(
    ("prompts", "max_tokens", "typical", "extra", "expect"),
    [
        # two prompts of 100 and 50 tokens, max 200, typical 80: low = 150 in + 160 out, high = 150 in + 400 out
        ([100, 50], 200, 80.0, (0, 0), {"input_tokens": 150, "input_tokens_high": 150, "output_tokens_typical": 160,
                                       "output_tokens_bound": 400, "cost_low_usd": 0.47, "cost_high_usd": 0.95}),
        # no reference to measure: the typical output is taken at the bound
        ([100], 300, None, (0, 0), {"output_tokens_typical": 300, "output_tokens_bound": 300, "cost_low_usd": 0.7}),
        # a typical length over max_tokens is capped by it
        ([10], 50, 500.0, (0, 0), {"output_tokens_typical": 50}),
        # prompts whose input is not written yet: typical and high extra input per call
        ([20, 20], 100, 10.0, (60, 400), {"input_tokens": 160, "input_tokens_high": 840, "cost_high_usd": 1.24}),
        ([], 100, 10.0, (0, 0), {"input_tokens": 0, "output_tokens_bound": 0, "cost_low_usd": 0.0, "cost_high_usd": 0.0}),
    ],
)
def test_the_estimate_prices_exact_prompts_and_bounded_output(prompts: list[int], max_tokens: int, typical: float | None,
                                                              extra: tuple[int, int], expect: dict[str, Any]) -> None:
    stage = rules.stage_estimate("answers", prompts, max_tokens=max_tokens, typical_output=typical, typical_from="refs",
                                 extra_input_typical=extra[0], extra_input_high=extra[1])
    found = rules.cost_estimate("openai:m", "m", [stage], PRICE).model_dump()
    for key, value in expect.items():
        assert found[key] == pytest.approx(value), key
    assert found["calls"] == len(prompts) and found["price_row"] == "t/m: per 1K"
    assert stage.exact_input is (extra[1] == 0)


@pytest.mark.parametrize(("amount", "shown"), [(None, "unknown"), (0.0, "$0.0000"), (0.000012, "$0.000012"),
                                               (0.5, "$0.5000"), (1234.5, "$1,234.5000")])
def test_a_small_cost_is_shown_to_the_cent_fraction(amount: float | None, shown: str) -> None:
    assert rules.format_usd(amount) == shown


def test_an_unpriced_teacher_counts_tokens_and_says_the_cost_is_unknown() -> None:
    stage = rules.stage_estimate("answers", [100], max_tokens=10, typical_output=5.0, typical_from="refs")
    found = rules.cost_estimate("openai:my-own", "my-own", [stage], None)
    assert found.cost_low_usd is None and found.cost_high_usd is None and found.input_tokens == 100
    assert "no on-demand price in the catalogue for 'my-own'" in found.note


# ----------------------------------------------------------------------------------------- end to end


def teacher_answer(request: dict[str, Any]) -> str:
    """The teacher: asked for inputs about a topic, it lists three; asked anything else, it answers it."""
    last = request["messages"][-1]["content"]
    topic = re.search(r"Topic: (.+)", last)
    if topic:
        name = topic.group(1).strip()
        return json.dumps([f"How do I handle {name} case {i}?" for i in range(3)])
    return f"Teacher says: {last[-40:]}"


@pytest.fixture(scope="module")
def double() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def clients(double: ChatDouble) -> dict[str, Any]:
    double.reset()
    double.script(NOVA, answer(teacher_answer))
    return {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    """'support': 6 answered examples and 4 that lack an answer; a template 'answer'.

    An import refuses an example with no assistant turn at all, so the answer is missing the two ways
    it can be: a conversation that ends with a user turn, and an assistant turn left empty.
    """
    records = [chat(f"Question {i}: where is my order?", f"Answer {i} is a reference of several words", metadata={"topic": "orders"})
               for i in range(6)]
    kind = {"role": "system", "content": "Be kind."}
    records += [{"messages": [kind, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                              {"role": "user", "content": f"Open question {i}?"}]} for i in range(2)]
    records += [{"messages": [kind, {"role": "user", "content": f"Open question {i}?"}, {"role": "assistant", "content": ""}]}
                for i in range(2, 4)]
    importing.import_path(store, write_jsonl(records), "support")
    templates.create_version(store, "answer", user_template="Answer well: {{ input }}", task_type="support",
                             settings={"model": NOVA, "max_tokens": 200})
    return store


def run(store: Store, clients: dict[str, Any], **options: Any) -> distill.DistillReport:
    options.setdefault("teacher", TEACHER)
    options.setdefault("template", "answer@1")
    teacher, template = options.pop("teacher"), options.pop("template")
    return distill.distill(store, teacher, template, clients=clients, retry=QUICK, **options)


def examples_of(store: Store, name: str) -> list[Any]:
    return datasets.browse(store, name, ExampleFilter(), page_size=500).examples


def unanswered(example: Any) -> bool:
    last = example.messages[-1]
    return last.role is Role.USER or not last.content.strip()


def test_a_new_dataset_lands_with_provenance_and_waits_for_review(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    result = run(loaded, clients, dataset="support", into="support-distilled")

    assert result.state == "done" and result.inputs == 10 and result.answered == 10
    assert (result.landed, result.already, result.failed, result.queued) == (10, 0, 0, 10)
    assert double.calls == 10 and result.cost_usd > 0 and result.cache_hits == 0
    landed = examples_of(loaded, "support-distilled")
    assert len(landed) == 10
    first = next(e for e in landed if e.messages[0].content.startswith("Question 0"))
    assert [m.role for m in first.messages] == [Role.USER, Role.ASSISTANT], "the input turns, then the teacher's answer"
    assert first.messages[-1].content == "Teacher says: " + "Answer well: Question 0: where is my order?"[-40:]
    meta = first.metadata
    assert meta["source"] == "distill" and meta["teacher"] == TEACHER and meta["template"] == "answer@1"
    assert meta["distill_run"] == result.id and meta["comparison_run"] == result.answers_run_id
    assert meta["cost_usd"] > 0 and "nova-lite" in meta["price_row"] and meta["topic"] == "orders"
    assert meta["source_example_id"] is not None and meta["source_dataset"] == "support"
    assert "distilled" in first.tags and first.review_state.value == "pending"
    multi_turn = next(e for e in landed if e.messages[-2].content == "Open question 0?")
    assert multi_turn.system == "Be kind." and [m.content for m in multi_turn.messages[:2]] == ["Hi", "Hello"]
    blank = next(e for e in landed if e.messages[-2].content == "Open question 2?")
    assert len(blank.messages) == 2 and blank.messages[-1].content.startswith("Teacher says:"), "the empty reply is not kept"

    item = review.next_item(loaded, "alice", QueueFilter(source_kind=SourceKind.DISTILLATION))
    assert item is not None and item.dataset == "support-distilled" and item.model_id == NOVA and item.task_type == "support"
    assert item.example_id in {e.id for e in landed} and item.output.startswith("Teacher says:")
    assert review.input_turns(item)[-1].role is Role.USER

    again = distill.resume(loaded, result.id, clients=clients, retry=QUICK)
    assert (again.landed, again.already, again.queued) == (0, 10, 10), "landing twice adds nothing"
    assert len(examples_of(loaded, "support-distilled")) == 10 and double.calls == 10


def test_fill_references_answers_only_what_lacks_an_answer_and_never_overwrites(loaded: Store, clients: dict[str, Any],
                                                                                double: ChatDouble) -> None:
    before = {e.id: e for e in examples_of(loaded, "support")}
    result = run(loaded, clients, dataset="support", fill_references=True)

    assert result.inputs == 4 and result.landed == 4 and double.calls == 4, "answered examples are not sent to the teacher"
    after = {e.id: e for e in examples_of(loaded, "support")}
    for example_id, old in before.items():
        new = after[example_id]
        if not unanswered(old):
            assert new.messages == old.messages and new.metadata == old.metadata, "an existing answer is never touched"
        else:
            kept = old.messages if old.messages[-1].role is Role.USER else old.messages[:-1]
            assert new.messages[:-1] == kept and new.messages[-1].content.startswith("Teacher says:")
            assert new.metadata["distill_run"] == result.id and new.revision == old.revision + 1
            assert "distilled" in new.tags
    assert result.queued == 4

    # An answer written meanwhile (by a person) is kept when a landing comes again.
    target = next(e for e in after.values() if e.metadata.get("distill_run") == result.id)
    again = distill.resume(loaded, result.id, clients=clients, retry=QUICK)
    assert (again.landed, again.already, again.kept_existing) == (0, 4, 0)
    assert after[target.id].messages == {e.id: e for e in examples_of(loaded, "support")}[target.id].messages


def test_fill_references_keeps_an_answer_that_arrived_after_the_run_started(loaded: Store, clients: dict[str, Any]) -> None:
    from workbench.domain.example import Message
    from workbench.store import examples as example_rows

    asked = {"n": 0}

    def stop_after_two() -> bool:
        asked["n"] += 1
        return asked["n"] > 2

    stopped = run(loaded, clients, dataset="support", fill_references=True, concurrency=1,
                  progress=Progress(lambda state: None, stop_after_two, every=0))
    assert stopped.state == "stopped"
    person = [e for e in examples_of(loaded, "support") if unanswered(e)][-1]
    with loaded.write() as db:
        example_rows.save_revision(db, person, person.model_copy(update={
            "messages": [*person.messages[:-1], Message(role=Role.ASSISTANT, content="A person's answer")],
            "content_hash": "by-a-person"}))
    resumed = distill.resume(loaded, stopped.id, clients=clients, retry=QUICK)
    assert resumed.state == "done" and resumed.kept_existing == 1
    kept = {e.id: e for e in examples_of(loaded, "support")}[person.id]
    assert kept.messages[-1].content == "A person's answer"


def test_seed_topics_are_written_then_answered_in_two_stages(store: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    templates.create_version(store, "answer", user_template="{{ input }}", settings={"model": NOVA, "max_tokens": 100})
    result = run(store, clients, seeds=["refunds", "late parcels", "refunds"], per_topic=3, into="seeded")

    assert result.state == "done" and result.topics == 2 and result.inputs == 6
    assert result.inputs_run_id is not None and result.answers_run_id is not None
    assert double.calls == 2 + 6, "one call per topic for the inputs, one per input for the answers"
    landed = examples_of(store, "seeded")
    assert len(landed) == 6 and result.queued == 6
    meta = {e.metadata["seed_topic"] for e in landed}
    assert meta == {"refunds", "late parcels"}
    one = landed[0]
    assert one.messages[0].content.startswith("How do I handle") and one.metadata["input_cost_usd"] > 0
    assert one.metadata["seed_template"] == f"{rules.SEED_TEMPLATE}@1"
    assert templates.resolve(store, rules.SEED_TEMPLATE).settings.temperature == 1.0, "the seed template is in the library"
    asked = next(json.dumps(c.body) for c in double.calls_to("openai") if "Topic: refunds" in json.dumps(c.body))
    assert "Write 3 distinct" in asked and '"temperature": 1.0' in asked


def test_a_seed_reply_that_cannot_be_read_is_reported_by_topic(store: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    templates.create_version(store, "answer", user_template="{{ input }}", settings={"model": NOVA})
    double.script(NOVA, answer(lambda r: "" if "Topic: blank" in r["messages"][-1]["content"] else teacher_answer(r)))
    result = run(store, clients, seeds=["blank", "refunds"], per_topic=3, into="seeded")
    assert result.state == "done" and result.inputs == 3
    assert [(u.topic, u.problem) for u in result.unusable_replies] == [("blank", "no inputs found in the reply")]


def test_a_stop_in_the_middle_then_resume_calls_only_the_missing_cells(loaded: Store, clients: dict[str, Any],
                                                                       double: ChatDouble) -> None:
    asked = {"n": 0}

    def stop_after_some() -> bool:
        asked["n"] += 1
        return asked["n"] > 4

    stopped = run(loaded, clients, dataset="support", into="half", concurrency=1,
                  progress=Progress(lambda state: None, stop_after_some, every=0))
    assert stopped.state == "stopped" and 0 < stopped.landed < 10
    assert len(examples_of(loaded, "half")) == stopped.landed, "a stopped run lands what it answered"
    calls = double.calls

    resumed = distill.resume(loaded, stopped.id, clients=clients, retry=QUICK)
    assert resumed.state == "done" and resumed.answered == 10
    assert double.calls - calls == 10 - stopped.answered, "answered inputs were not asked again"
    assert (resumed.landed, resumed.already) == (10 - stopped.landed, stopped.landed)
    assert len(examples_of(loaded, "half")) == 10


def test_a_resume_after_the_process_died_is_answered_from_the_cache(loaded: Store, clients: dict[str, Any],
                                                                    double: ChatDouble) -> None:
    first = run(loaded, clients, dataset="support", into="whole", limit=3)
    with loaded.write() as db:  # as a killed process leaves it: no answers run recorded, state running
        db.execute("UPDATE distill_runs SET answers_run_id = NULL, state = 'running' WHERE id = ?", [first.id])
    calls = double.calls
    again = distill.resume(loaded, first.id, clients=clients, retry=QUICK)
    assert double.calls == calls and again.cache_hits == 3 and again.cost_saved_usd > 0 and again.already == 3


def test_teacher_errors_are_reported_per_input_and_land_nothing(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    def sometimes_broken(request: dict[str, Any]) -> str:
        return teacher_answer(request)

    double.script(NOVA, answer(sometimes_broken))
    double.script_next(failing(500, "the teacher is overloaded"), times=1)
    result = run(loaded, clients, dataset="support", into="partial", limit=3, concurrency=1)
    assert result.state == "done" and result.failed == 1 and result.landed == 2
    failure = result.failures[0]
    assert "the teacher is overloaded" in failure.error and failure.row == 0 and failure.example_id is not None
    assert failure.input.startswith("Question 0")
    assert len(examples_of(loaded, "partial")) == 2 and result.queued == 2

    calls_before = double.calls
    resumed = distill.resume(loaded, result.id, clients=clients)  # the outage is over: only the failed call is made again
    assert double.calls - calls_before == 1
    assert resumed.state == "done" and resumed.failed == 0 and len(examples_of(loaded, "partial")) == 3


def test_hostile_output_is_stored_as_text(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    hostile = "<script>alert(1)</script>=HYPERLINK(\"http://x\") **bold** " + "x" * 20_000
    double.script(NOVA, answer(hostile))
    result = run(loaded, clients, dataset="support", into="hostile", limit=1)
    landed = examples_of(loaded, "hostile")
    assert result.landed == 1 and landed[0].messages[-1].content == hostile


def test_the_estimate_counts_the_real_rendering(loaded: Store) -> None:
    found = distill.estimate(loaded, TEACHER, "answer@1", dataset="support", limit=6)
    version = templates.resolve(loaded, "answer@1")
    rendered = [templates.render(loaded, "answer@1", dataset="support", example_id=e.id).tokens.total
                for e in sorted(examples_of(loaded, "support"), key=lambda e: e.id)[:6]]
    assert found.calls == 6 and found.input_tokens == sum(rendered) == found.input_tokens_high
    assert found.output_tokens_bound == 6 * version.settings.max_tokens
    assert found.stages[0].typical_from == "mean of 6 reference answers in 'support'"
    price = price_for(NOVA)
    assert price is not None and found.price_row == price.row
    assert found.cost_low_usd is not None and found.cost_high_usd is not None and 0 < found.cost_low_usd < found.cost_high_usd

    fill = distill.estimate(loaded, TEACHER, "answer@1", dataset="support", fill_references=True)
    assert fill.calls == 4 and fill.answered_skipped == 6 and fill.stages[0].output_tokens_typical == found.stages[0].output_tokens_typical * 4 // 6

    seeds = distill.estimate(loaded, TEACHER, "answer@1", seeds=["refunds", "late parcels"], per_topic=5)
    inputs, answers = seeds.stages
    assert (inputs.stage, inputs.calls, answers.calls) == ("inputs", 2, 10) and not answers.exact_input
    assert answers.input_tokens < answers.input_tokens_high
    with pytest.raises(NotFound):
        templates.resolve(loaded, rules.SEED_TEMPLATE)  # an estimate writes nothing

    unpriced = distill.estimate(loaded, "openai:my-own-model", "answer@1", dataset="support", limit=2)
    assert unpriced.cost_low_usd is None and "no on-demand price" in unpriced.note


@pytest.mark.parametrize(
    ("options", "error", "kind"),
    [
        ({"dataset": "support"}, "say where the answers land", InvalidInput),
        ({}, "give the inputs", InvalidInput),
        ({"dataset": "support", "seeds": ["x"], "into": "n"}, "not both", InvalidInput),
        ({"dataset": "support", "into": "n", "fill_references": True}, "not both", InvalidInput),
        ({"seeds": ["x"], "fill_references": True}, "--fill-references answers a dataset", InvalidInput),
        ({"dataset": "support", "fill_references": True, "version": "v1"}, "is frozen", InvalidInput),
        ({"dataset": "support", "into": "support"}, "already exists", Conflict),
        ({"dataset": "nope", "into": "n"}, "no dataset named 'nope'", NotFound),
        ({"dataset": "support", "into": "n", "template": "missing@1"}, "no template named 'missing'", NotFound),
        ({"dataset": "support", "into": "n", "teacher": "gpt-4o"}, "CLIENT:MODEL", InvalidInput),
        ({"dataset": "support", "into": "n", "limit": 0}, "limit must be 1 to", InvalidInput),
        ({"dataset": "support", "into": "n", "split": "nope"}, "split must be one of", InvalidInput),
        ({"dataset": "support", "into": "n", "concurrency": 0}, "concurrency must be 1 to", InvalidInput),
        ({"seeds": ["x"] * 1 + [f"t{i}" for i in range(200)], "per_topic": 50, "into": "n"}, "at most 5,000", InvalidInput),
        ({"dataset": "support", "split": "test", "into": "n"}, "has no examples", InvalidInput),
    ],
)
def test_bad_requests_are_refused_before_any_call(loaded: Store, clients: dict[str, Any], double: ChatDouble, options: dict[str, Any],
                                                  error: str, kind: type[Exception]) -> None:
    with pytest.raises(kind, match=re.escape(error)):
        run(loaded, clients, **options)
    assert double.calls == 0 and distill.list_runs(loaded) == []


def test_every_answered_example_already_filled_says_there_is_nothing_to_fill(loaded: Store, clients: dict[str, Any]) -> None:
    run(loaded, clients, dataset="support", fill_references=True)
    with pytest.raises(InvalidInput, match="nothing to fill"):
        run(loaded, clients, dataset="support", fill_references=True)


def test_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no distillation 7"):
        distill.resume(store, 7)


def test_a_distillation_runs_as_a_background_task(loaded: Store, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Templates page starts: the run in a task, its report kept with it; a stopped one is resumed the same way."""
    from workbench.services import tasks
    from workbench.store.tasks import TaskState

    double.reset()
    double.script(NOVA, answer(teacher_answer))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    task = tasks.start(loaded, "distill", "support", {"teacher": TEACHER, "template": "answer@1", "into": "by-task", "limit": 3})
    assert task.state is TaskState.DONE, task.error
    assert task.result["landed"] == 3 and task.result["into_dataset"] == "by-task"
    assert comparisons.get_run(loaded, task.result["answers_run_id"]).kind == "distill"

    seeded = tasks.start(loaded, "distill", None, {"teacher": TEACHER, "template": "answer@1", "seeds": ["refunds"], "per_topic": 2,
                                                   "into": "seeded-by-task"})
    assert seeded.state is TaskState.DONE, seeded.error
    assert seeded.dataset == "seeded-by-task", "a seed run's task is filed under the dataset it made"

    resumed = tasks.start(loaded, "distill", None, {"resume": task.result["id"]})
    assert resumed.state is TaskState.DONE and resumed.result["already"] == 3


def test_identical_answers_to_identical_inputs_land_once(store: Store, clients: dict[str, Any], write_jsonl: WriteJsonl) -> None:
    records = [chat("Same question?", "first answer"), chat("Same question?", "second answer"), chat("Other question?", "x")]
    importing.import_path(store, write_jsonl(records), "twins")
    templates.create_version(store, "answer", user_template="{{ input }}", settings={"model": NOVA})
    result = run(store, clients, dataset="twins", into="twins-taught")
    assert (result.landed, result.duplicates, result.queued) == (2, 1, 2)
    again = distill.resume(store, result.id, clients=clients, retry=QUICK)
    assert (again.landed, again.already, again.duplicates, again.queued) == (0, 2, 1, 2)


def test_a_task_cancelled_in_its_own_process_lands_what_it_answered_and_resumes(loaded: Store, double: ChatDouble,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The Templates page's Cancel, then Resume: the run stops at the next cell, keeps its answers, finishes later."""
    from tests.helpers import task_ended, wait_task
    from workbench.services import tasks
    from workbench.store.tasks import TaskState

    double.reset()
    double.script(NOVA, answer(teacher_answer, delay_s=0.3))
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    task = tasks.start(loaded, "distill", "support", {"teacher": TEACHER, "template": "answer@1", "into": "slow", "concurrency": 1})
    wait_task(loaded, task, lambda t: t.done >= 2 or not t.state.active)
    tasks.cancel(loaded, task.id)
    task = wait_task(loaded, task, task_ended)
    assert task.state is TaskState.CANCELLED, task.error
    stopped = distill.list_runs(loaded)[0]
    assert stopped.state == "stopped"
    partial = distill.report(loaded, stopped.id)
    assert 0 < partial.landed < 10 and len(examples_of(loaded, "slow")) == partial.landed

    double.script(NOVA, answer(teacher_answer))
    calls = double.calls
    resumed = wait_task(loaded, tasks.start(loaded, "distill", None, {"resume": stopped.id}), task_ended)
    assert resumed.state is TaskState.DONE, resumed.error
    assert resumed.result["landed"] + resumed.result["already"] == 10 and len(examples_of(loaded, "slow")) == 10
    assert double.calls - calls == 10 - partial.answered


# ----------------------------------------------------------------------------------------- review fixes


def landing_hook(action: Any) -> Progress:
    """A Progress that does `action` once, as the landing stage starts: what another writer does in that moment."""
    done = {"hook": False}

    def report(state: Any) -> None:
        if state.stage == "landing" and not done["hook"]:
            done["hook"] = True
            action()

    return Progress(report, every=0)


def test_a_dataset_imported_under_the_name_mid_run_is_never_merged_into(loaded: Store, clients: dict[str, Any],
                                                                        write_jsonl: WriteJsonl) -> None:
    def import_it() -> None:
        importing.import_path(loaded, write_jsonl([chat("Someone else's?", "Theirs.")]), "taken-midway")

    with pytest.raises(Conflict, match=r"'taken-midway' was made by an import or another action while distillation #1 ran"):
        run(loaded, clients, dataset="support", into="taken-midway", limit=3, progress=landing_hook(import_it))
    assert [e.messages[0].content for e in examples_of(loaded, "taken-midway")] == ["Someone else's?"]
    kept = distill.get_run(loaded, 1)
    assert kept.state == "failed" and "another name" in (kept.error or "") and kept.dataset_id is None


def test_two_runs_into_one_new_name_the_second_to_land_is_refused(loaded: Store, clients: dict[str, Any]) -> None:
    """Both passed the name check when planned; the one that lands first owns the dataset."""
    second: dict[str, Any] = {}

    def other_run_lands_first() -> None:
        second["report"] = run(loaded, clients, dataset="support", into="shared", limit=2, split=None)

    with pytest.raises(Conflict, match=r"'shared' was made by distillation #2 while distillation #1 ran"):
        run(loaded, clients, dataset="support", into="shared", limit=3, progress=landing_hook(other_run_lands_first))
    owner = second["report"]
    assert owner.state == "done" and owner.landed == 2 and distill.get_run(loaded, owner.id).dataset_id == owner.dataset_id
    assert {e.metadata["distill_run"] for e in examples_of(loaded, "shared")} == {owner.id}, "nothing of run #1 merged in"
    again = distill.resume(loaded, owner.id, clients=clients, retry=QUICK)
    assert (again.state, again.already) == ("done", 2), "a run still lands in the dataset it made"


def test_when_every_call_fails_nothing_is_made_and_the_run_fails_resumably(loaded: Store, clients: dict[str, Any],
                                                                           double: ChatDouble) -> None:
    double.script(NOVA, failing(401, "invalid api key"))
    result = run(loaded, clients, dataset="support", into="never-made", limit=3)
    assert result.state == "failed" and result.landed == 0 and result.failed == 3 and result.queued == 0
    assert result.error is not None and "nothing landed: all 3 inputs failed" in result.error and "invalid api key" in result.error
    assert f"workbench distill resume {result.id}" in result.error
    assert "never-made" not in {d.name for d in datasets.list_datasets(loaded)}, "no empty dataset"
    assert result.cost_usd == 0.0, "failed calls cost nothing"

    double.script(NOVA, answer(teacher_answer))
    fixed = distill.resume(loaded, result.id, clients=clients, retry=QUICK)
    assert fixed.state == "done" and fixed.landed == 3 and len(examples_of(loaded, "never-made")) == 3


def test_an_unpriced_teacher_reports_an_unknown_cost_not_zero(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script("my-own-model", answer("An answer from a model nobody prices."))
    result = run(loaded, clients, teacher="openai:my-own-model", dataset="support", into="unpriced", limit=2)
    assert result.state == "done" and result.landed == 2
    assert result.cost_usd is None and result.cost_saved_usd is None
    assert distill.report(loaded, result.id).model_dump(mode="json")["cost_usd"] is None


def test_a_runaway_answer_over_the_size_limit_fails_for_its_input(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    from workbench.services.distill_landing import MAX_OUTPUT_CHARS

    double.script(NOVA, answer("x" * (MAX_OUTPUT_CHARS + 1)))
    result = run(loaded, clients, dataset="support", into="runaway", limit=1)
    assert result.failed == 1 and result.landed == 0 and result.state == "failed"
    assert f"over the {MAX_OUTPUT_CHARS:,}" in result.failures[0].error


def test_the_first_progress_report_names_a_stage_with_its_count(loaded: Store, clients: dict[str, Any]) -> None:
    seen: list[Any] = []
    run(loaded, clients, dataset="support", into="watched", limit=4, progress=Progress(seen.append, every=0))
    assert (seen[0].stage, seen[0].total, seen[0].unit) == ("answers", 4, "inputs")
    assert seen[-1].stage == "landing" and seen[-1].done == seen[-1].total == 4


@pytest.mark.parametrize(
    ("model", "client"),
    [("amazon.nova-lite-v1:0", "bedrock"), ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock"),
     ("meta.llama3-8b-instruct-v1:0", "bedrock"), ("cohere.command-r-v1:0", "bedrock"), ("claude-sonnet-4-5", "anthropic"),
     ("gpt-4o", "openai"), ("o1", "openai"), ("o3-mini", "openai"), ("ft:gpt-4o-mini:acme::abc", "openai"), ("llama3.1", None)],
)
def test_a_model_id_says_which_client_serves_it(model: str, client: str | None) -> None:
    assert rules.client_for_model(model) == client


def test_a_client_that_cannot_serve_the_model_is_named() -> None:
    said = rules.client_mismatch("openai", NOVA)
    assert said is not None and "bedrock model id" in said and "Pick the bedrock client" in said
    assert rules.client_mismatch("bedrock", NOVA) is None and rules.client_mismatch("local", NOVA) is None
    assert rules.client_mismatch("anthropic", "my-own-model") is None
