"""The template library: versions, labels, the sandbox, rendering on variables and dataset examples, costs, diffs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain import templates as tpl
from workbench.domain.example import Example, Message, Role
from workbench.domain.starter_templates import DEMO_STARTERS, STARTERS, Starter
from workbench.errors import InvalidInput, NotFound
from workbench.services import templates as svc
from workbench.services.importing import import_path
from workbench.store import Store

# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["summary", "exec-summary.v2", "A_1", "x" * 100])
def test_good_template_names(name: str) -> None:
    assert tpl.check_name(f" {name} ") == name


@pytest.mark.parametrize("name", ["", "two words", "sum@mary", "-lead", ".hidden", "x" * 101, "naïve\u202e"])
def test_bad_template_names_say_what_is_allowed(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput, match="bad template name"):
        svc.create_version(store, name, user_template="{{ input }}")


@pytest.mark.parametrize(("label", "why"), [
    ("Production", "bad label"), ("2", "bad label"), ("a b", "bad label"), ("", "bad label"),
    ("latest", "moves by itself"),
])
def test_bad_labels(store: Store, label: str, why: str) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    with pytest.raises(InvalidInput, match=why):
        svc.set_label(store, "t", 1, label)


@pytest.mark.parametrize(("pairs", "why"), [
    (["novalue"], "write it as key=value"), (["_x=1"], "bad variable name '_x'"), (["a b=1"], "bad variable name"),
])
def test_bad_vars(pairs: list[str], why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        svc.parse_vars(pairs)


def test_a_var_value_keeps_its_equals_signs() -> None:
    assert svc.parse_vars(["query=a=b", "empty="]) == {"query": "a=b", "empty": ""}


@pytest.mark.parametrize(("settings", "why"), [
    ({"temperature": 2.5}, "temperature"), ({"temperature": -0.1}, "temperature"), ({"max_tokens": 0}, "max_tokens"),
    ({"top_p": 0}, "top_p"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"), ({"model": ""}, "model"),
    ({"seed": 3}, "seed"),
])
def test_bad_model_settings_name_the_setting(store: Store, settings: dict[str, Any], why: str) -> None:
    with pytest.raises(InvalidInput, match=f"model setting {why}"):
        svc.create_version(store, "t", user_template="{{ input }}", settings=settings)


def test_a_new_template_needs_a_user_template(store: Store) -> None:
    with pytest.raises(InvalidInput, match="needs a user template"):
        svc.create_version(store, "t", system_template="Be brief.")
    with pytest.raises(InvalidInput, match="needs a user template"):
        svc.create_version(store, "t", user_template="  \n")


# ------------------------------------------------------------------------------------------ variables and errors


@pytest.mark.parametrize(("system", "user", "variables"), [
    ("", "{{ input }}", ["input"]),
    ("You write for {{ audience }}.", "{{ input }}", ["audience", "input"]),
    ("", "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{{ input }}", ["input", "messages"]),
    ("", "{% set n = 3 %}Give {{ n }} points about {{ topic }}", ["topic"]),
    ("", "{{ range(3) | join(',') }} {{ cycler('a', 'b').next() }}", []),
    ("", "{% if notes is defined %}{{ notes }}{% endif %}{{ input | upper }}", ["input", "notes"]),
])
def test_variables_are_found_with_jinja_meta(store: Store, system: str, user: str, variables: list[str]) -> None:
    version = svc.create_version(store, "t", user_template=user, system_template=system).version
    assert version.variables == variables


def test_an_undefined_variable_names_it_the_version_and_what_was_given(store: Store) -> None:
    svc.create_version(store, "brief", user_template="Write for {{ audience }}:\n{{ input }}")
    with pytest.raises(InvalidInput, match=r"brief@1: variable 'audience' used in the user template is not defined "
                                           r"\(given: input\); pass it with --var audience="):
        svc.render(store, "brief", {"input": "text"})


def test_an_undefined_variable_in_the_system_template_says_so(store: Store) -> None:
    svc.create_version(store, "brief", user_template="{{ input }}", system_template="Tone: {{ tone }}")
    with pytest.raises(InvalidInput, match=r"'tone' used in the system template is not defined \(given: none\)"):
        svc.render(store, "brief")


def test_a_syntax_error_gives_the_part_and_line(store: Store) -> None:
    with pytest.raises(InvalidInput, match="syntax error in the user template, line 3"):
        svc.create_version(store, "t", user_template="Hello\n\n{{ input }\n")
    with pytest.raises(InvalidInput, match="syntax error in the system template, line 1"):
        svc.create_version(store, "t", user_template="{{ input }}", system_template="{% if x %}open")


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ input['__class__'] }}",
    "{{ lipsum.__globals__['os'] }}",
])
def test_reaching_for_python_internals_is_refused_when_the_version_is_made(store: Store, source: str) -> None:
    with pytest.raises(InvalidInput, match=r"reaches for Python internals .* refused"):
        svc.create_version(store, "t", user_template=source)
    assert svc.list_templates(store) == []


@pytest.mark.parametrize("source", ["{% include 'secrets.txt' %}", "{% extends 'base' %}", "{% import 'm' as m %}"])
def test_include_import_and_extends_are_refused(store: Store, source: str) -> None:
    with pytest.raises(InvalidInput, match="include, import and extends are not supported"):
        svc.create_version(store, "t", user_template=source)


@pytest.mark.parametrize(("source", "why"), [
    ("{{ cycler | attr('__in' ~ 'it__') }}", "refused by the sandbox .*unsafe"),  # built at run time: only the sandbox sees it
    ("{{ messages.append('x') }}{{ input }}", "refused by the sandbox .*append"),  # the immutable sandbox
    ("{{ 'x' * 10000000 }}", "refused by the sandbox .*over the limit"),
    ("{{ 10 ** 100000 }}", "refused by the sandbox .*too large"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}", "more than 2,000,000"),
    ("{{ input + 1 }}", "failed to render"),
])
def test_the_sandbox_refuses_at_render_time(store: Store, source: str, why: str) -> None:
    svc.create_version(store, "t", user_template=source)
    with pytest.raises(InvalidInput, match=why):
        svc.render(store, "t", {"input": "x", "messages": []})


# ------------------------------------------------------------------------------------------ versions and labels


def test_versions_are_numbered_and_an_unchanged_one_is_not_made(store: Store) -> None:
    first = svc.create_version(store, "t", user_template="{{ input }}", task_type="qa", description="Q", created_by="ann")
    assert (first.created, first.new_template, first.version.version, first.version.created_by) == (True, True, 1, "ann")
    again = svc.create_version(store, "t", user_template="{{ input }}", commit_message="same again")
    assert (again.created, again.version.version, again.version.commit_message) == (False, 1, "")
    second = svc.create_version(store, "t", user_template="Q: {{ input }}", commit_message="prefix")
    assert (second.created, second.version.version, second.version.labels) == (True, 2, ["latest"])
    # Only the newest is compared: going back to version 1's text is a new version (a rollback by content).
    assert svc.create_version(store, "t", user_template="{{ input }}").version.version == 3
    detail = svc.template_detail(store, "t")
    assert [v.version for v in detail.versions] == [1, 2, 3]
    assert detail.labels == {"latest": 3}
    assert (detail.template.task_type, detail.template.description) == ("qa", "Q")


def test_a_new_version_keeps_what_was_not_given(store: Store) -> None:
    svc.create_version(
        store, "t", user_template="{{ input }}", system_template="Be brief.", cot_instruction="Think first.",
        few_shot=[tpl.FewShot(input="2+2", output="4")], settings={"model": "gpt-4o-mini", "max_tokens": 50},
    )
    v2 = svc.create_version(store, "t", settings={"temperature": 0.7}).version
    assert (v2.version, v2.system_template, v2.user_template, v2.cot_instruction) == (2, "Be brief.", "{{ input }}", "Think first.")
    assert (v2.settings.model, v2.settings.max_tokens, v2.settings.temperature) == ("gpt-4o-mini", 50, 0.7)
    assert [s.output for s in v2.few_shot] == ["4"]
    v3 = svc.create_version(store, "t", cot_instruction="", few_shot=[]).version
    assert (v3.cot_instruction, v3.few_shot) == (None, [])


def test_labels_move_and_their_history_is_kept(store: Store) -> None:
    for text in ("A {{ input }}", "B {{ input }}", "C {{ input }}"):
        svc.create_version(store, "t", user_template=text, created_by="ann")
    first = svc.set_label(store, "t", 1, "production", moved_by="bob")
    assert first is not None and (first.from_version, first.to_version, first.moved_by) == (None, 1, "bob")
    assert svc.set_label(store, "t", 1, "production") is None  # already there: nothing recorded
    moved = svc.set_label(store, "t", 2, "production", moved_by=None)
    assert moved is not None and (moved.from_version, moved.to_version) == (1, 2)
    svc.set_label(store, "t", 1, "experiment-b")
    detail = svc.template_detail(store, "t")
    assert detail.labels == {"experiment-b": 1, "latest": 3, "production": 2}
    production = [(m.from_version, m.to_version, m.moved_by) for m in detail.moves if m.label == "production"]
    assert production == [(1, 2, None), (None, 1, "bob")]
    assert [(m.from_version, m.to_version) for m in detail.moves if m.label == "latest"] == [(2, 3), (1, 2), (None, 1)]
    assert svc.resolve(store, "t@production").version == 2
    assert svc.resolve(store, "t@experiment-b").labels == ["experiment-b"]
    assert svc.resolve(store, "t").version == 3 and svc.resolve(store, "t@latest").version == 3


@pytest.mark.parametrize(("ref", "message"), [
    ("nope", r"no template named 'nope'; templates: alpha, beta"),
    ("alpha@7", r"template 'alpha' has no version 7; versions: 1 to 2"),
    ("alpha@prod", r"template 'alpha' has no label 'prod'; labels: latest -> 2, production -> 1"),
])
def test_unknown_names_versions_and_labels_list_what_exists(store: Store, ref: str, message: str) -> None:
    svc.create_version(store, "alpha", user_template="{{ input }}")
    svc.create_version(store, "alpha", user_template="v2 {{ input }}")
    svc.create_version(store, "beta", user_template="{{ input }}")
    svc.set_label(store, "alpha", 1, "production")
    with pytest.raises(NotFound, match=message):
        svc.resolve(store, ref)


def test_labelling_a_version_that_does_not_exist_lists_the_versions(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    with pytest.raises(NotFound, match="no version 4; versions: 1 to 1"):
        svc.set_label(store, "t", 4, "production")


def test_a_stored_version_cannot_be_changed(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    with store.connect() as db, pytest.raises(sqlite3.DatabaseError, match="immutable"):
        db.execute("UPDATE prompt_versions SET user_template = 'changed'")
    assert svc.resolve(store, "t@1").user_template == "{{ input }}"


def test_a_version_is_found_by_its_row_id(store: Store) -> None:
    made = svc.create_version(store, "t", user_template="{{ input }}").version
    assert svc.get_version(store, made.id).ref == "t@1"
    with pytest.raises(NotFound, match="no template version with id 999"):
        svc.get_version(store, 999)


# ------------------------------------------------------------------------------------------ rendering


def test_rendering_is_exactly_what_the_model_sees(store: Store) -> None:
    svc.create_version(
        store, "t", system_template="You answer {{ tone }}.", user_template="Question: {{ input }}\n",
        cot_instruction="Think step by step, then answer.",
        few_shot=[tpl.FewShot(input="Question: 2+2?", output="4"), tpl.FewShot(input="Question: 3+3?", output="6")],
    )
    r = svc.render(store, "t", {"input": "5+5?", "tone": "tersely"})
    assert r.system == "You answer tersely.\n\nThink step by step, then answer."
    assert [(m.role, m.content) for m in r.messages] == [
        ("user", "Question: 2+2?"), ("assistant", "4"), ("user", "Question: 3+3?"), ("assistant", "6"),
        ("user", "Question: 5+5?"),
    ]
    assert (r.template, r.version, r.variables) == ("t", 1, {"input": "5+5?", "tone": "tersely"})
    assert len(r.tokens.messages) == 5 and r.tokens.total > r.tokens.system + sum(r.tokens.messages)


@pytest.mark.parametrize(("system", "cot", "expected"), [
    ("", None, None), ("", "Reason first.", "Reason first."), ("Be kind.", None, "Be kind."),
])
def test_the_system_prompt_is_absent_only_when_there_is_nothing_to_send(
    store: Store, system: str, cot: str | None, expected: str | None
) -> None:
    svc.create_version(store, "t", user_template="{{ input }}", system_template=system, cot_instruction=cot)
    assert svc.render(store, "t", {"input": "x"}).system == expected


def test_html_in_variables_is_passed_through_unescaped(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    text = "<b>bold</b> & 'quotes' <script>alert(1)</script>"
    assert svc.render(store, "t", {"input": text}).messages[-1].content == text


@pytest.fixture
def qa_dataset(store: Store, write_jsonl: WriteJsonl) -> int:
    record = {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "My order is late."},
            {"role": "assistant", "content": "Sorry! What is the order number?"},
            {"role": "user", "content": "It is 1234."},
            {"role": "assistant", "content": "Order 1234 ships tomorrow."},
        ],
        "metadata": {"topic": "shipping", "bad key": 1, "input": "shadow"},
    }
    import_path(store, write_jsonl([record, chat("Other", "Answer")]), "support")
    import_path(store, write_jsonl([chat("Elsewhere", "Reply")], name="other.jsonl"), "other")
    with store.connect() as db:
        return int(db.execute("SELECT id FROM examples WHERE messages LIKE '%1234%'").fetchone()[0])


def test_a_dataset_example_offers_its_turns_and_metadata(store: Store, qa_dataset: int) -> None:
    found = svc.example_variables(store, qa_dataset, "support")
    assert found == {
        "input": "It is 1234.",
        "reference": "Order 1234 ships tomorrow.",
        "system": "You are a support agent.",
        "messages": [
            {"role": "user", "content": "My order is late."},
            {"role": "assistant", "content": "Sorry! What is the order number?"},
        ],
        "topic": "shipping",
    }


def test_rendering_on_an_example_and_var_wins(store: Store, qa_dataset: int) -> None:
    svc.create_version(
        store, "t", system_template="{{ system }} Topic: {{ topic }}.",
        user_template="{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}user: {{ input }}",
    )
    r = svc.render(store, "t", {"topic": "delivery"}, dataset="support", example_id=qa_dataset)
    assert r.system == "You are a support agent. Topic: delivery."
    assert r.messages[-1].content == (
        "user: My order is late.\nassistant: Sorry! What is the order number?\nuser: It is 1234."
    )


def test_an_example_from_another_dataset_or_no_example_is_refused(store: Store, qa_dataset: int) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    with pytest.raises(NotFound, match=f"example {qa_dataset} is not in dataset 'other'"):
        svc.render(store, "t", dataset="other", example_id=qa_dataset)
    with pytest.raises(NotFound, match="no example with id 9999"):
        svc.render(store, "t", example_id=9999)
    with pytest.raises(NotFound, match="no dataset named 'gone'"):
        svc.render(store, "t", dataset="gone", example_id=qa_dataset)
    with pytest.raises(InvalidInput, match="give the example too"):
        svc.render(store, "t", dataset="support")


def test_few_shot_pairs_copy_the_text_of_examples(store: Store, qa_dataset: int) -> None:
    pairs = svc.few_shot_from_examples(store, [qa_dataset], "support")
    assert [(p.input, p.output, p.source) for p in pairs] == [
        ("It is 1234.", "Order 1234 ships tomorrow.", f"support example {qa_dataset}"),
    ]
    svc.create_version(store, "t", user_template="{{ input }}", few_shot=pairs)
    with store.write() as db:
        db.execute("DELETE FROM examples")
    assert svc.render(store, "t", {"input": "x"}).messages[1].content == "Order 1234 ships tomorrow."


def test_an_example_without_an_answer_is_no_few_shot_pair() -> None:
    question = Example(messages=[Message(role=Role.USER, content="Just a question")])
    with pytest.raises(InvalidInput, match="open example 7 has no assistant turn"):
        tpl.few_shot_of(question, "open example 7")
    assert tpl.example_variables(question) == {"input": "Just a question", "messages": []}


# ------------------------------------------------------------------------------------------ tokens and cost


@pytest.mark.parametrize(("model", "found"), [
    ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ("us.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ("amazon.nova-micro-v1:0:128k", "amazon.nova-micro-v1:0"),
    ("AMAZON.NOVA-PRO-V1:0", "amazon.nova-pro-v1:0"),
    ("anthropic.claude-3-haiku-20240307-v1:0", None),
    ("gpt-4o-mini", None),
])
def test_a_model_id_finds_its_price_row(model: str, found: str | None) -> None:
    price = tpl.price_for(model)
    assert (price.model if price else None) == found


def test_the_cost_of_a_call_is_tokens_times_the_catalogue_prices(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}", settings={"max_tokens": 400})
    r = svc.render(store, "t", {"input": "Summarise the quarterly report in three bullet points."})
    own = r.costs[0]
    lite = tpl.price_for("amazon.nova-lite-v1:0")
    assert lite is not None and own.template_model and own.model == "amazon.nova-lite-v1:0"
    assert own.input_tokens == r.tokens.total and own.output_tokens == 400
    assert own.usd == pytest.approx(r.tokens.total * lite.input_per_1k / 1000 + 400 * lite.output_per_1k / 1000)
    assert own.source == lite.source and own.price_row and "nova-lite" in own.price_row
    assert "confirm it on the source page" in own.note  # the catalogue marks these prices second-hand
    priced = {c.model for c in r.costs}
    assert {"amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"} <= priced and len(priced) == len(r.costs)
    shorter = svc.render(store, "t", {"input": "x"}, expected_output_tokens=10).costs[0]
    assert shorter.output_tokens == 10


def test_a_model_without_a_price_says_so(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}", settings={"model": "claude-sonnet-4-5"})
    own = svc.render(store, "t", {"input": "x"}).costs[0]
    assert own.template_model and own.usd is None and own.price_row is None
    assert "no on-demand price in the catalogue for 'claude-sonnet-4-5'" in own.note


# ------------------------------------------------------------------------------------------ diff


def test_two_versions_diff_as_rendered_on_the_same_input(store: Store) -> None:
    svc.create_version(store, "t", system_template="Be brief.", user_template="Summarise:\n{{ input }}")
    svc.create_version(store, "t", system_template="Be brief and kind.", user_template="Summarise:\n{{ input }}",
                       settings={"temperature": 0.5})
    d = svc.diff(store, "t", 1, "latest", {"input": "The text."})
    assert d.a.version == 1 and d.b.version == 2
    system, user = d.parts
    assert system.changed and "-Be brief." in system.diff and "+Be brief and kind." in system.diff
    assert system.diff[0] == "--- t@1 system" and system.diff[1] == "+++ t@2 system"
    assert user.part == "messages[0] (user)" and not user.changed and user.diff == []
    assert d.settings == {"temperature": [0.0, 0.5]}


def test_a_diff_shows_turns_one_version_has_and_the_other_lacks(store: Store) -> None:
    svc.create_version(store, "t", user_template="{{ input }}")
    svc.create_version(store, "t", few_shot=[tpl.FewShot(input="hi", output="hello")])
    parts = svc.diff(store, "t", 1, 2, {"input": "x"}).parts
    assert [p.part for p in parts] == ["system", "messages[0] (user)", "messages[1] (assistant)", "messages[2] (user)"]
    assert parts[2].a is None and parts[2].b == "hello" and "+hello" in parts[2].diff


# ------------------------------------------------------------------------------------------ starters


STARTER_VARIABLES: dict[str, Any] = {
    "input": "Ops review, 3 March. Revenue grew 12% to $4.1M. Dana will hire two engineers by 30 April. "
             "The data-centre move is at risk if the vendor slips again.",
    "document": "Revenue grew 12% in Q1.\n\nCosts fell 3%.\n\nHeadcount is flat.",
    "question": "How did revenue change?",
    "documents": "Report A: sales rose.\n---\nReport B: sales fell in the north.",
}


@pytest.mark.parametrize("starter", STARTERS, ids=lambda s: s.name)
def test_every_starter_renders_and_is_costed(starter: Starter) -> None:
    content = tpl.VersionContent(
        system_template=starter.system, user_template=starter.user, cot_instruction=starter.cot,
        few_shot=list(starter.few_shot), settings=tpl.model_settings(**starter.settings),
    )
    variables = tpl.check_content(content)
    version = tpl.TemplateVersion(
        **content.model_dump(), id=1, template_id=1, template=starter.name, version=1, variables=variables,
        content_hash=content.digest(), created_at="2026-01-01T00:00:00+00:00",
    )
    r = tpl.render_prompt(version, {k: v for k, v in STARTER_VARIABLES.items() if k in variables})
    assert r.system and r.messages[-1].content.strip()
    assert "{{" not in r.messages[-1].content and "{%" not in r.messages[-1].content
    assert r.costs[0].template_model and r.costs[0].usd is not None


def test_starters_install_once(store: Store) -> None:
    assert svc.install_starters(store, created_by="setup") == [s.name for s in STARTERS]
    assert svc.install_starters(store) == []
    summaries = svc.list_templates(store)
    assert len(summaries) == len(STARTERS) and {s.versions for s in summaries} == {1}
    assert all(s.labels == {"latest": 1, "production": 1} for s in summaries)


def test_a_starter_the_user_changed_is_left_alone(store: Store) -> None:
    svc.create_version(store, "risk-assessment", user_template="My own {{ input }}")
    assert "risk-assessment" not in svc.install_starters(store)
    assert svc.resolve(store, "risk-assessment").user_template == "My own {{ input }}"


DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture
def small_demo(tmp_path: Path) -> Path:
    """The demo files cut to their first lines, so loading the demo takes a moment."""
    from workbench.services.demo import DEMO_DATASETS

    folder = tmp_path / "demo"
    folder.mkdir()
    for _, filename, _, _ in DEMO_DATASETS:
        with (DEMO_DIR / filename).open() as src, (folder / filename).open("w") as dst:
            dst.writelines(line for _, line in zip(range(12), src, strict=False))
    return folder


def test_each_demo_dataset_has_a_starter_that_renders_on_its_examples(store: Store, small_demo: Path) -> None:
    from workbench.services.demo import DEMO_DATASETS

    assert set(DEMO_STARTERS) == {name for name, *_ in DEMO_DATASETS}
    svc.install_starters(store)
    for dataset, starter in DEMO_STARTERS.items():
        filename = next(f for name, f, *_ in DEMO_DATASETS if name == dataset)
        import_path(store, small_demo / filename, dataset)
        with store.connect() as db:
            ids = [row[0] for row in db.execute(
                "SELECT e.id FROM examples e JOIN datasets d ON d.id = e.dataset_id WHERE d.name = ?", [dataset])]
        for example_id in ids:
            r = svc.render(store, starter, dataset=dataset, example_id=example_id)
            assert r.messages[-1].content.endswith(svc.example_variables(store, example_id)["input"].strip())


def test_loading_the_demo_installs_the_starters_once(store: Store, small_demo: Path) -> None:
    from workbench.services.demo import load_demo

    load_demo(store, demo_dir=small_demo)
    load_demo(store, demo_dir=small_demo)
    summaries = svc.list_templates(store)
    assert sorted(s.template.name for s in summaries) == sorted(s.name for s in STARTERS)
    assert {s.versions for s in summaries} == {1}

