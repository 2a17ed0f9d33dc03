"""What a new user tripped over on the Datasets page with a tool-use file, each pinned by AppTest.

Found by walking the page in a browser: losses named turns by list index (`messages[1]` is the
user turn in the OpenAI record shown beside it, the assistant turn in the loss), the tools an
example declares were nowhere in its conversation view, the freeze form kept the last version's
name and note, and empty cells read "None".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl
from workbench.domain.filters import ExampleFilter
from workbench.domain.locations import field_label
from workbench.services import datasets, importing, splits
from workbench.store import Store
from workbench.ui.widgets import escape_markdown

ROOT = Path(__file__).resolve().parents[1]
DATASETS = str(ROOT / "pages" / "1_Datasets.py")
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}


def tool_record(city: str, i: int) -> dict[str, Any]:
    """An OpenAI function-calling record: system, user, a tool call, its result, the answer."""
    return {
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": f"Weather in {city}?"},
            {"role": "assistant", "tool_calls": [{"id": f"call_{i}", "type": "function",
                                                  "function": {"name": "get_weather", "arguments": orjson.dumps({"city": city}).decode()}}]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": f"{10 + i} C"},
            {"role": "assistant", "content": f"It is {10 + i} C in {city}.", "weight": 1},
        ],
        "tools": [WEATHER],
    }


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def weather(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_jsonl: WriteJsonl) -> Store:
    """Dataset 'weather': three tool-use examples."""
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")  # dataset-wide actions run in the page's process, to the end
    store = Store(path)
    importing.import_path(store, write_jsonl([tool_record(c, i) for i, c in enumerate(["Paris", "Oslo", "Lima"])]), "weather")
    return store


def run(**params: str) -> AppTest:
    at = AppTest.from_file(DATASETS, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def first_id(store: Store) -> int:
    return datasets.browse(store, "weather", ExampleFilter(search="paris")).examples[0].id or 0


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("messages[1].tool_calls", "turn 2 (assistant), tool_calls"),
        ("messages[2]", "turn 3 (tool)"),
        ("messages[3].weight", "turn 4 (assistant), weight"),
        ("messages[1].tool_calls[0].arguments", "turn 2 (assistant), tool call 1 arguments"),
        ("tools", "tools"),
        ("metadata.source", "metadata.source"),
        ("system", "system"),
        ("messages[*].tool_calls", "a turn, tool_calls"),
        ("messages[*]", "a turn"),
    ],
)
def test_a_lost_field_names_its_turn_as_the_conversation_does(field: str, label: str) -> None:
    assert field_label(field, ["user", "assistant", "tool", "assistant"]) == label


def test_the_json_view_lists_losses_by_turn_label_not_list_index(weather: Store) -> None:
    at = run(dataset="weather", example=str(first_id(weather)))
    # The JSON view shows the stored text; an export scrubs PII unless asked not to, and the help says so.
    assert "scrubs PII by default" in (at.segmented_control(key="datasets.example_view").help or "")
    at.segmented_control(key="datasets.example_view").set_value("JSON").run()
    at.selectbox(key="datasets.example_format").set_value("bedrock-claude").run()

    warning = at.warning[0].value
    assert "Not carried into this format" in warning
    # messages[1] of the OpenAI record is the user turn; the tool call lives on the second turn.
    assert "messages[" not in warning
    assert escape_markdown("turn 2 (assistant), tool_calls:") in warning and escape_markdown("turn 3 (tool):") in warning


def test_export_lists_each_lost_field_with_a_count_and_each_example_by_turn(weather: Store) -> None:
    at = run(dataset="weather", tab="Export")
    at.selectbox(key="datasets.export_format").set_value("bedrock-claude").run()
    at.button(key="datasets.export_prepare").click().run()
    assert not at.exception, [e.value for e in at.exception]

    fields = next(d.value for d in at.dataframe if "field" in d.value.columns and "examples" in d.value.columns)
    counts = dict(zip(fields["field"], fields["examples"], strict=True))
    assert counts["tools"] == 3 and counts["a turn, tool_calls"] == 3 and counts["a turn"] == 3
    rows = next(d.value for d in at.dataframe if "why" in d.value.columns)
    paris = rows[rows["example_id"] == first_id(weather)]
    assert set(paris["field"]) >= {"tools", "turn 2 (assistant), tool_calls", "turn 3 (tool)", "turn 4 (assistant), weight"}
    assert not any(str(f).startswith("messages[") for f in rows["field"])


def test_an_example_shows_the_tools_it_declares(weather: Store) -> None:
    at = run(dataset="weather", example=str(first_id(weather)))

    tools = [e for e in at.expander if e.label.startswith("Tools offered")]
    assert [e.label for e in tools] == [f"Tools offered (1): {escape_markdown('get_weather')}"]
    schema = [c.value for c in tools[0].code]
    assert len(schema) == 1 and orjson.loads(schema[0]) == WEATHER["function"]["parameters"]


def test_the_freeze_form_starts_empty_after_a_version_and_the_table_says_all_splits(weather: Store) -> None:
    splits.split_dataset(weather, "weather", (0.8, 0.1, 0.1))
    at = run(dataset="weather", tab="Split & versions")
    at.text_input(key="datasets.version_name").set_value("v1")
    at.text_input(key="datasets.version_note").set_value("first cut")
    at.button(key="datasets.freeze_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]

    assert at.text_input(key="datasets.version_name").value == ""
    assert at.text_input(key="datasets.version_note").value == ""
    table = next(d.value for d in at.dataframe if "frozen (UTC)" in d.value.columns)
    assert table.to_dict("records")[0] | {"frozen (UTC)": None} == {
        "name": "v1", "split": "all", "examples": 3, "note": "first cut", "frozen (UTC)": None,
    }


def test_a_refused_freeze_keeps_what_was_typed(weather: Store) -> None:
    at = run(dataset="weather", tab="Split & versions")
    at.text_input(key="datasets.version_name").set_value("bad name!")
    at.text_input(key="datasets.version_note").set_value("keep me")
    at.button(key="datasets.freeze_submit").click().run()

    assert at.error, "an invalid version name is reported"
    assert at.text_input(key="datasets.version_name").value == "bad name!"
    assert at.text_input(key="datasets.version_note").value == "keep me"


def test_a_finding_about_the_whole_dataset_has_a_blank_where(weather: Store) -> None:
    at = run(dataset="weather", tab="Validate")
    at.selectbox(key="datasets.target").set_value("openai").run()
    at.button(key="datasets.validate").click().run()

    rows = next(d.value for d in at.dataframe if "code" in d.value.columns)
    dataset_level = rows[rows["code"] == "too_few_examples"]
    assert dataset_level["where"].tolist() == [""]


def test_a_search_that_matches_nothing_says_what_to_try(weather: Store) -> None:
    at = run(dataset="weather", q="zzzz")

    assert any(m.value.startswith("**0** matching examples") for m in at.markdown)
    assert [i.value for i in at.info] == [
        "Nothing matches these filters. Search matches whole words and word beginnings: try a shorter word, "
        "loosen a filter, or press Clear filters."
    ]


def test_an_example_without_metadata_says_so_instead_of_an_empty_object(weather: Store) -> None:
    at = run(dataset="weather", example=str(first_id(weather)))

    assert not at.json
    assert "None: the record had no metadata or extra keys." in [c.value for c in at.caption]


def test_home_stops_asking_for_an_import_once_the_user_has_their_own_data(weather: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(weather, write_jsonl([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}],
                                                name="demo.jsonl"), "demo-geo-compliance")
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]

    banner = at.info[0].value
    assert "demo workspace" in banner
    assert "Import your own file" not in banner and "Delete them from Manage" in banner
