"""Home and Datasets pages driven through AppTest: widgets by key, assertions on the screen and the store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import PiiFinding, ReviewState
from workbench.domain.filters import ExampleFilter
from workbench.services import datasets, importing
from workbench.store import Store
from workbench.ui.datasets_filters import filter_from_query, filter_to_query
from workbench.ui.widgets import escape_markdown, highlighted_markdown

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "Home.py")
DATASETS = str(ROOT / "pages" / "1_Datasets.py")
HOSTILE_MARKDOWN = "**bold** [link](http://x) <img src=x onerror=alert(1)> $x$ :red[red]"


@pytest.fixture(autouse=True)
def fresh_caches() -> Any:
    # Both caches outlive an AppTest instance; a cached store or count would leak between tests.
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    return Store(path)


@pytest.fixture
def seeded(db: Store, write_jsonl: WriteJsonl, sample_records: list[dict[str, Any]]) -> Store:
    """Dataset 'support': 21 examples; 18 topical chats (4 about refunds), one with an email, two hostile ones."""
    records = [*sample_records, chat(HOSTILE_MARKDOWN, "Noted.", metadata={"topic": "hostile"})]
    importing.import_path(db, write_jsonl(records), "support")
    return db


def run(page: str, **params: str | list[str]) -> AppTest:
    at = AppTest.from_file(page, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def example_id(store: Store, search: str) -> int:
    return datasets.browse(store, "support", ExampleFilter(search=search)).examples[0].id or 0


def matching(store: Store, **flt: Any) -> int:
    return datasets.browse(store, "support", ExampleFilter(**flt)).total


def table_ids(at: AppTest) -> list[int]:
    return at.dataframe[0].value["id"].tolist()


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


# ----------------------------------------------------------------------------------------------- home


def test_home_empty_store_says_how_to_start(db: Store) -> None:
    at = run(HOME)

    assert "Nothing here yet" in at.subheader[0].value
    assert "workbench demo load" in at.code[0].value
    assert at.page_link[0].proto.page == "Datasets"
    assert at.page_link[0].proto.query_string == "tab=Import"


def test_home_lists_datasets_and_what_needs_attention(seeded: Store) -> None:
    at = run(HOME)

    assert "support" in markdown_text(at)
    links = [link.value for link in at.page_link]
    assert "support: 1 example with PII" in links
    assert "support: 21 examples waiting for review" in links
    assert not at.info  # not the demo


def test_home_marks_the_demo_workspace(db: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat("hi", "hello")]), "demo-geo-compliance")

    at = run(HOME)

    assert "demo workspace" in at.info[0].value


# ------------------------------------------------------------------------------------------- datasets


def test_empty_store_offers_the_import_form(db: Store) -> None:
    at = run(DATASETS)

    assert "No datasets yet" in at.info[0].value
    assert at.file_uploader(key="datasets.upload")


def test_import_uploads_a_file_and_reports_bad_lines(db: Store) -> None:
    content = orjson.dumps(chat("hello", "hi there")) + b"\n" + b"{not json\n" + orjson.dumps(chat("bye", "see you")) + b"\n"
    at = run(DATASETS)

    at.file_uploader(key="datasets.upload").set_value(("tickets.jsonl", content, "application/jsonl"))
    at.text_input(key="datasets.import_name").input("tickets")
    at.button(key="datasets.import_submit").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert datasets.get_dataset(db, "tickets").example_count == 2
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Imported"] == "2"
    assert metrics["Lines not imported"] == "1"
    errors = at.dataframe[0].value
    assert errors["line"].tolist() == [2]
    assert at.selectbox(key="datasets.dataset").value == "tickets"


def test_search_narrows_the_table_and_the_count(seeded: Store) -> None:
    at = run(DATASETS)
    assert len(table_ids(at)) == 21

    at.text_input(key="datasets.search").input("refund").run()

    assert sorted(table_ids(at)) == sorted(e.id for e in datasets.browse(seeded, "support", ExampleFilter(search="refund")).examples)
    assert len(table_ids(at)) == 4
    assert "**4** matching examples" in markdown_text(at)
    assert at.query_params["q"] == "refund"


@pytest.mark.parametrize(
    ("key", "value", "param", "expected"),
    [
        ("datasets.split", "unassigned", "split", "unassigned"),
        ("datasets.review", "pending", "review", "pending"),
        ("datasets.pii", "with PII", "pii", "yes"),
        ("datasets.checks", "ok", "checks", "ok"),
    ],
)
def test_filters_are_written_to_the_url(seeded: Store, key: str, value: str, param: str, expected: str) -> None:
    at = run(DATASETS)

    at.selectbox(key=key).set_value(value).run()

    assert at.query_params[param] == expected
    assert at.query_params["dataset"] == "support"


def test_pages_move_through_the_table_and_a_new_filter_starts_over(db: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(60)]), "big")
    at = run(DATASETS)
    assert "showing 1-50" in markdown_text(at)

    at.pagination(key="datasets.pager").select(2).run()
    assert "showing 51-60" in markdown_text(at)
    assert len(table_ids(at)) == 10

    at.text_input(key="datasets.search").input("Question").run()
    assert "**60** matching examples · showing 1-50" in markdown_text(at)


def test_switching_dataset_drops_the_old_filters(seeded: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(seeded, write_jsonl([chat("other", "dataset")], name="other.jsonl"), "other")
    at = run(DATASETS, dataset="support", q="refund")

    at.selectbox(key="datasets.dataset").set_value("other").run()

    assert at.query_params["dataset"] == "other"
    assert "q" not in at.query_params
    assert at.text_input(key="datasets.search").value == ""
    assert len(table_ids(at)) == 1


def test_show_pii_in_browse_switches_tab_with_the_filter(seeded: Store) -> None:
    at = run(DATASETS, tab="Clean")

    at.button(key="datasets.show_pii").click().run()

    assert (at.query_params["tab"], at.query_params["pii"]) == ("Browse", "yes")
    assert table_ids(at) == [example_id(seeded, "email")]


def test_a_link_reproduces_the_view(seeded: Store) -> None:
    at = run(DATASETS, dataset="support", tab="Browse", q="email", pii="yes")

    assert at.text_input(key="datasets.search").value == "email"
    assert at.selectbox(key="datasets.pii").value == "with PII"
    assert len(table_ids(at)) == 1


def test_nonsense_in_the_url_is_ignored(seeded: Store) -> None:
    at = run(DATASETS, dataset="nope", split="bogus", rating="9-12", tags="missing", min_tokens="-3")

    assert "no dataset called nope" in at.warning[0].value
    assert len(table_ids(at)) == 21


def test_rating_and_accept_land_in_the_store(seeded: Store) -> None:
    target = example_id(seeded, "refund")
    at = run(DATASETS, example=str(target))

    at.segmented_control(key="datasets.label_rating").set_value(4).run()
    at.button(key="datasets.review_accepted").click().run()

    stored = datasets.get_example(seeded, target)
    assert stored.rating == 4
    assert stored.review_state is ReviewState.ACCEPTED
    assert not at.exception


def test_tags_and_notes_are_saved_from_the_form(seeded: Store) -> None:
    target = example_id(seeded, "refund")
    at = run(DATASETS, example=str(target))

    at.multiselect(key="datasets.label_tags").set_value(["gold"])
    at.text_area(key="datasets.label_notes").input("checked by hand")
    at.button(key="datasets.label_save").click().run()

    stored = datasets.get_example(seeded, target)
    assert (stored.tags, stored.notes) == (["gold"], "checked by hand")


def test_edit_turns_saves_a_revision_and_keeps_the_old_text(seeded: Store) -> None:
    target = example_id(seeded, "refund")
    before = datasets.get_example(seeded, target)
    at = run(DATASETS)
    at.number_input(key="datasets.example_id").set_value(target).run()
    assert at.subheader[0].value == f"Example {target}"
    assert at.query_params["example"] == str(target)

    # AppTest cannot type into a data_editor; it takes the edit state the browser would send.
    at.session_state["datasets.edit_turns"] = {
        "edited_rows": {1: {"content": "A better answer"}},
        "added_rows": [{"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Then we ship."}],
        "deleted_rows": [],
    }
    at.button(key="datasets.edit_save").click().run()

    after = datasets.get_example(seeded, target)
    assert [m.content for m in after.messages] == [before.messages[0].content, "A better answer", "And then?", "Then we ship."]
    assert after.revision == before.revision + 1
    assert datasets.revisions(seeded, target)[0]["messages"] == before.messages
    assert "saved as revision 2" in at.success[0].value


def test_bulk_actions_apply_to_the_filtered_selection_and_undo_restores(seeded: Store) -> None:
    refunds = {e.id for e in datasets.browse(seeded, "support", ExampleFilter(search="refund")).examples}
    at = run(DATASETS, q="refund")

    at.selectbox(key="datasets.bulk_action").set_value("tag").run()
    at.text_input(key="datasets.bulk_tag").input("urgent").run()
    at.button(key="datasets.bulk_apply").click().run()
    assert {e.id for e in datasets.browse(seeded, "support", ExampleFilter(tags=["urgent"])).examples} == refunds

    at.selectbox(key="datasets.bulk_action").set_value("accept").run()
    at.button(key="datasets.bulk_apply").click().run()
    assert matching(seeded, review_state="accepted") == 4
    assert "Undo last bulk action (accept on 4 examples)" in at.button(key="datasets.undo_browse_bulk").label

    at.button(key="datasets.undo_browse_bulk").click().run()
    assert matching(seeded, review_state="accepted") == 0
    assert matching(seeded, tags=["urgent"]) == 4  # only the last action is undone


def test_bulk_delete_needs_confirmation(seeded: Store) -> None:
    at = run(DATASETS, q="refund")

    at.selectbox(key="datasets.bulk_action").set_value("delete").run()
    assert at.button(key="datasets.bulk_apply").disabled

    at.checkbox(key="datasets.bulk_confirm").check().run()
    at.button(key="datasets.bulk_apply").click().run()
    assert matching(seeded) == 17


@pytest.mark.parametrize(
    ("search", "escaped"),
    [
        ("script", "\\<script\\>alert\\(1\\)\\<\\/script\\>"),
        ("onerror", "\\*\\*bold\\*\\* \\[link\\]\\(http\u2060\\:\\/\\/x\\) \\<img src\\=x onerror\\=alert\\(1\\)\\>"),
    ],
)
def test_hostile_text_is_shown_as_text(seeded: Store, search: str, escaped: str) -> None:
    at = run(DATASETS, example=str(example_id(seeded, search)))
    rendered = markdown_text(at)

    assert escaped in rendered
    # Every markdown or HTML character from the example arrives backslash-escaped.
    assert not re.search(r"(?<!\\)[<>\[\]]|(?<!\\)\*\*bold|(?<!\\):red", rendered)


def test_pii_is_highlighted_and_scrubbed_with_one_click(seeded: Store) -> None:
    target = example_id(seeded, "email")
    at = run(DATASETS, example=str(target))
    assert ":red-background[jane\\.doe\\@\u2060example\\.com]" in markdown_text(at)

    at.button(key="datasets.scrub").click().run()

    stored = datasets.get_example(seeded, target)
    assert stored.pii == []
    assert "[EMAIL]" in stored.messages[0].content


def test_split_form_updates_the_counts(seeded: Store) -> None:
    at = run(DATASETS, tab="Split & versions")

    at.number_input(key="datasets.split_train").set_value(0.5)
    at.number_input(key="datasets.split_validation").set_value(0.25)
    at.number_input(key="datasets.split_test").set_value(0.25)
    at.checkbox(key="datasets.split_only_new").uncheck()
    at.button(key="datasets.split_submit").click().run()

    splits = datasets.facets(seeded, "support").splits
    assert set(splits) == {"train", "validation", "test"}
    assert sum(splits.values()) == 21
    assert splits["train"] > splits["test"]
    assert "Assigned 21 examples" in at.success[0].value


def test_bad_split_ratios_are_reported_not_raised(seeded: Store) -> None:
    at = run(DATASETS, tab="Split & versions")

    at.number_input(key="datasets.split_train").set_value(0.9)
    at.button(key="datasets.split_submit").click().run()

    assert at.error and not at.exception
    assert datasets.facets(seeded, "support").splits == {"unassigned": 21}


def test_export_offers_a_download_with_one_line_per_example(seeded: Store) -> None:
    at = run(DATASETS, tab="Export")

    at.selectbox(key="datasets.export_format").set_value("prompt-completion").run()
    at.button(key="datasets.export_prepare").click().run()

    assert at.download_button(key="datasets.download")
    _, data, result = at.session_state["datasets.export"]
    lines = data.decode().splitlines()
    assert len(lines) == 21 == result.written
    assert {m.label: m.value for m in at.metric}["Scrubbed"] == "1"
    assert not any("jane.doe@example.com" in line for line in lines)


def test_validate_reports_against_a_target(seeded: Store) -> None:
    at = run(DATASETS, tab="Validate")

    at.selectbox(key="datasets.target").set_value("openai").run()
    at.button(key="datasets.validate").click().run()

    assert {m.label: m.value for m in at.metric}["Records"] == "21"
    assert at.success or at.error
    assert len(at.get("plotly_chart")) >= 3


def test_guardrail_rule_added_and_run_shows_a_pass_rate(seeded: Store) -> None:
    at = run(DATASETS, tab="Clean")

    at.text_input(key="datasets.rule_name").input("no scripts")
    at.text_area(key="datasets.rule_pattern").input("<script>")
    at.selectbox(key="datasets.rule_action").set_value("block")
    at.button(key="datasets.rule_submit").click().run()
    at.button(key="datasets.run_rules").click().run()

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Failing"] == "1"
    assert metrics["Pass rate"] == f"{20 / 21:.1%}"


def test_every_tab_renders(seeded: Store) -> None:
    for tab in ("Browse", "Import", "Clean", "Validate", "Split & versions", "Export"):
        at = run(DATASETS, tab=tab)
        assert not at.error, (tab, [e.value for e in at.error])


# ---------------------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "flt",
    [
        ExampleFilter(),
        ExampleFilter(search='"late delivery" refund', tags=["a", "b c"], split="train"),
        ExampleFilter(min_rating=3, max_rating=5, unrated=False, has_pii=False, review_state="accepted"),
        ExampleFilter(validation_status="warning", min_tokens=10, max_tokens=900, metadata_field="topic", metadata_value="refund"),
    ],
)
def test_filter_round_trips_through_the_url(flt: ExampleFilter) -> None:
    assert filter_from_query(filter_to_query(flt)) == flt


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>alert(1)</script>", "\\<script\\>alert\\(1\\)\\<\\/script\\>"),
        ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
        ("# not a heading\n    not code", "\\# not a heading  \n&nbsp;&nbsp;&nbsp;&nbsp;not code"),
        ("cost $5 & :red[x]", "cost \\$5 \\& \\:red\\[x\\]"),
        # Invisible word joiners keep GFM from turning addresses into links.
        ("a@b.io www.c.io https://d.io", "a\\@\u2060b\\.io www\u2060\\.c\\.io https\u2060\\:\\/\\/d\\.io"),
    ],
)
def test_escape_markdown_leaves_nothing_to_interpret(text: str, shown: str) -> None:
    assert escape_markdown(text) == shown


def test_pii_highlight_escapes_inside_and_outside_the_finding() -> None:
    text = "mail *me* at a_b@x.io"
    finding = PiiFinding(kind="email", where="messages[0]", start=13, end=21, text="a_b@x.io")

    assert highlighted_markdown(text, [finding]) == "mail \\*me\\* at :red-background[a\\_b\\@\u2060x\\.io]"
