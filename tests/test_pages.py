"""Home and Datasets pages driven through AppTest: widgets by key, assertions on the screen and the store."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.domain.catalogue import get_target
from workbench.domain.example import PiiFinding, ReviewState
from workbench.domain.filters import ExampleFilter
from workbench.errors import QueryTooSlow
from workbench.services import cleaning, datasets, importing, tasks, validating
from workbench.services.splits import split_dataset
from workbench.store import Store
from workbench.ui.datasets_filters import filter_from_query, filter_to_query
from workbench.ui.widgets import PAGE_ICON, escape_markdown, highlighted_markdown

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "Home.py")
DATASETS = str(ROOT / "pages" / "1_Datasets.py")
HOSTILE_MARKDOWN = "**bold** [link](http://x) <img src=x onerror=alert(1)> $x$ :red[red]"


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")  # dataset-wide actions run in the page's process, to the end
    return Store(path)


@pytest.fixture
def seeded(db: Store, write_jsonl: WriteJsonl, sample_records: list[dict[str, Any]]) -> Store:
    """Dataset 'support': 21 examples; 18 topical chats (4 about refunds), one with an email, two hostile ones."""
    records = [*sample_records, chat(HOSTILE_MARKDOWN, "Noted.", metadata={"topic": "hostile"})]
    importing.import_path(db, write_jsonl(records), "support")
    return db


def run(script: str, **params: str | list[str]) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
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


def code_values(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


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


def test_home_shows_an_experiment_with_a_winner_even_with_no_datasets(db: Store) -> None:
    from workbench.services import experiments

    found = experiments.load_demo_experiment(db, predictions=12_000)

    at = run(HOME)

    links = [link for link in at.page_link if link.value.startswith("Experiment ")]
    assert links and escape_markdown(found.name) in links[0].value and "decide whether to ship" in links[0].value
    assert links[0].proto.query_string == f"experiment={found.id}"
    assert any("Nothing here yet" in h.value for h in at.subheader)


def in_order(node: Any) -> list[Any]:
    """Every element of an AppTest tree, in the order the page shows them."""
    children = getattr(node, "children", None)
    if children is None:
        return [node]
    return [leaf for key in sorted(children) for leaf in in_order(children[key])]


def test_home_puts_production_notices_under_needs_attention_as_warnings(
        seeded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from workbench.services import alerts, experiments

    firing = SimpleNamespace(rule_name="accuracy low", fired_at="2026-11-30T19:53:12.345+00:00",
                             message="accuracy 71% below 80%")
    monkeypatch.setattr(alerts, "firing", lambda store: [firing])
    experiments.load_demo_experiment(seeded, predictions=12_000)

    at = run(HOME)

    shown = [(e.type, str(getattr(e, "value", ""))) for e in in_order(at.main)]
    heading = shown.index(("subheader", "Needs attention"))
    alert = next(i for i, (kind, text) in enumerate(shown) if kind == "warning" and "accuracy low" in text)
    experiment = next(i for i, (kind, text) in enumerate(shown) if kind == "warning" and "Experiment " in text)
    production = shown.index(("subheader", "Production, last 7 days"))
    assert heading < alert < experiment < production, "the notices sit under Needs attention, above the numbers"
    assert "firing since 30 Nov 19:53 UTC" in shown[alert][1] and "2026-11-30T" not in shown[alert][1]
    assert [w for w in at.warning if "accuracy low" in w.value], "a warning, not a bare link"
    links = [link for link in at.page_link if link.value.startswith("Alert ")]
    assert links and links[0].proto.query_string == "tab=Alerts"


def test_home_lays_the_page_links_out_five_to_a_row(seeded: Store) -> None:
    from workbench.ui import home

    labels = {label for _, label in home.pages(ROOT)}
    at = run(HOME)

    rows = [block for block in in_order_blocks(at.main)
            if any(getattr(leaf, "type", "") == "page_link" and leaf.label in labels for leaf in in_order(block))]
    assert {"Templates", "Monitoring", "Experiments"} <= labels and len(labels) > 5
    assert rows and all(len(row.children) == 5 for row in rows), "five wide columns a row, so names show whole"
    assert sum(len(row.children) for row in rows) >= len(labels)


def in_order_blocks(node: Any) -> list[Any]:
    """The rows of columns in an AppTest tree, outermost first."""
    found = []
    for key in sorted(getattr(node, "children", None) or {}):
        child = node.children[key]
        if getattr(child, "type", "") == "flex_container" and child.children and all(
                getattr(c, "type", "") == "column" for c in child.children.values()):
            found.append(child)
        else:
            found += in_order_blocks(child)
    return found


def test_alert_times_read_as_day_month_and_utc() -> None:
    from workbench.ui.home import when_text

    assert when_text("2026-11-30T19:53:12.345+00:00") == "30 Nov 19:53 UTC"
    assert when_text("2026-12-01T01:05:00+02:00") == "30 Nov 23:05 UTC"
    assert when_text("2026-11-03T09:00:00") == "3 Nov 09:00 UTC"
    assert when_text(None) == "an unknown time"


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


def test_a_blank_dataset_name_imports_into_a_dataset_named_after_the_file(seeded: Store) -> None:
    """A blank name never adds to the dataset on screen: the file's name is used, as the field says."""
    at = run(DATASETS, dataset="support", tab="Import")
    assert "named after the file" in at.text_input(key="datasets.import_name").placeholder

    at.file_uploader(key="datasets.upload").set_value(("new-tickets.jsonl.gz", gzip.compress(orjson.dumps(chat("q", "a"))), "application/gzip"))
    at.button(key="datasets.import_submit").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert datasets.get_dataset(seeded, "new-tickets").example_count == 1
    assert datasets.get_dataset(seeded, "support").example_count == 21
    assert at.selectbox(key="datasets.dataset").value == "new-tickets"


def test_a_truncated_upload_keeps_what_was_read_and_warns_where_it_broke(db: Store) -> None:
    compressed = gzip.compress(b"".join(orjson.dumps(chat(f"Question {i} " + "x" * 60, "ok")) + b"\n" for i in range(3000)))
    at = run(DATASETS)

    at.file_uploader(key="datasets.upload").set_value(("cut.jsonl.gz", compressed[: len(compressed) // 2], "application/gzip"))
    at.button(key="datasets.import_submit").click().run()

    assert not at.exception, [e.value for e in at.exception]
    imported = datasets.get_dataset(db, "cut").example_count
    assert imported > 500 and not at.toast and not at.success
    warning = at.warning[0].value
    assert warning.startswith(f"The file could not be read to its end: line {imported + 1:,}: ")
    assert escape_markdown("reading stopped: the gzip data ends before its end-of-stream marker") in warning
    assert f"The {imported:,} examples before it were imported" in warning


def test_an_import_that_adds_nothing_is_an_error_with_its_reasons_not_a_success(seeded: Store) -> None:
    at = run(DATASETS, dataset="support", tab="Import")

    at.file_uploader(key="datasets.upload").set_value(("bad.jsonl", b"{not json\nnope\n", "application/jsonl"))
    at.text_input(key="datasets.import_name").input("support")
    at.button(key="datasets.import_submit").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert not at.toast and not at.success
    assert "Nothing was imported: none of the 2 lines read could be imported" in at.error[0].value
    assert at.dataframe[0].value["line"].tolist() == [1, 2]
    assert datasets.get_dataset(seeded, "support").example_count == 21


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

    assert at.query_params["page"] == "2"

    at.text_input(key="datasets.search").input("Question").run()
    assert "**60** matching examples · showing 1-50" in markdown_text(at)
    assert "page" not in at.query_params


def test_a_shared_link_opens_its_page(db: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(60)]), "big")

    at = run(DATASETS, dataset="big", page="2")
    assert "showing 51-60" in markdown_text(at) and len(table_ids(at)) == 10
    assert at.pagination(key="datasets.pager").value == 2

    at = run(DATASETS, dataset="big", page="9")  # past the end, as after a delete: the last page, and the URL says so
    assert "showing 51-60" in markdown_text(at) and at.query_params["page"] == "2"


def test_filters_under_more_filters_show_as_chips_each_clearable(seeded: Store) -> None:
    at = run(DATASETS, pii="yes", checks="ok", field="topic", value="contact")

    assert at.expander(key="datasets.more_filters").label == "More filters · 3 active"
    chips = {b.key: b.label for b in at.button if b.key and b.key.startswith("datasets.chip_")}
    shown = {"datasets.chip_pii": "with PII", "datasets.chip_checks": "checks: ok", "datasets.chip_metadata": "topic = contact"}
    assert chips == {key: escape_markdown(label) for key, label in shown.items()}  # labels are Markdown: names escaped
    assert len(table_ids(at)) == 1

    at.button(key="datasets.chip_pii").click().run()

    assert "pii" not in at.query_params and at.query_params["checks"] == "ok"
    assert at.selectbox(key="datasets.pii").value == "any"
    assert at.expander(key="datasets.more_filters").label == "More filters · 2 active"
    assert "datasets.chip_pii" not in [b.key for b in at.button]


def test_a_query_stopped_at_its_time_limit_is_a_message_and_the_filters_stay(seeded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def too_slow(*args: Any, **kwargs: Any) -> None:
        raise QueryTooSlow("This query took longer than the 1.5 s limit and was stopped.")

    # The service raises this when SQLite is interrupted; a real slow query needs millions of rows.
    monkeypatch.setattr(datasets, "browse", too_slow)
    at = run(DATASETS, q="refund")

    assert "took longer than the 1.5 s limit" in at.error[0].value
    assert at.text_input(key="datasets.search").value == "refund"  # still there, to narrow the filter


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


def test_rating_and_accepting_keep_unsaved_tags_notes_and_edits(seeded: Store) -> None:
    """A star click used to put every field back to its stored value, wiping what the reviewer had typed."""
    target = example_id(seeded, "refund")
    before = datasets.get_example(seeded, target)
    at = run(DATASETS, example=str(target))
    at.multiselect(key="datasets.label_tags").set_value(["gold"])
    at.text_area(key="datasets.label_notes").input("typed, not saved")
    at.text_area(key="datasets.edit_system").input("A new system prompt")
    at.session_state["datasets.edit_turns"] = {"edited_rows": {1: {"content": "A better answer"}}, "added_rows": [], "deleted_rows": []}

    at.segmented_control(key="datasets.label_rating").set_value(4).run()
    at.button(key="datasets.review_accepted").click().run()

    assert at.multiselect(key="datasets.label_tags").value == ["gold"]
    assert at.text_area(key="datasets.label_notes").value == "typed, not saved"
    assert at.text_area(key="datasets.edit_system").value == "A new system prompt"
    assert "Unsaved changes" in "\n".join(c.value for c in at.caption)
    stored = datasets.get_example(seeded, target)
    assert (stored.rating, stored.review_state, stored.notes, stored.tags) == (4, ReviewState.ACCEPTED, "", [])

    at.button(key="datasets.label_save").click().run()
    at.button(key="datasets.edit_save").click().run()

    stored = datasets.get_example(seeded, target)
    assert (stored.rating, stored.notes, stored.tags) == (4, "typed, not saved", ["gold"])
    assert (stored.system, stored.messages[1].content) == ("A new system prompt", "A better answer")
    assert stored.messages[0] == before.messages[0]


def test_an_unrated_example_shows_blank_not_none(seeded: Store) -> None:
    target = example_id(seeded, "refund")
    datasets.label(seeded, target, rating=5)
    at = run(DATASETS, example=str(target))

    ratings = dict(zip(table_ids(at), at.dataframe[0].value["rating"], strict=True))
    assert ratings[target] == "5 ★"
    assert {r for i, r in ratings.items() if i != target} == {""}
    at.number_input(key="datasets.example_id").set_value(example_id(seeded, "email")).run()
    assert "unrated" in at.caption[-1].value or any("unrated" in c.value for c in at.caption)
    assert not any("None" in c.value for c in at.caption)


def test_previous_and_next_step_through_the_table_across_pages(db: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(60)]), "big")
    ids = [e.id for e in datasets.browse(db, "big", ExampleFilter(), page_size=60).examples]  # as the table lists them
    at = run(DATASETS, example=str(ids[48]))
    assert at.button(key="datasets.example_previous").disabled is False

    at.button(key="datasets.example_next").click().run()
    assert at.subheader[0].value == f"Example {ids[49]}" and at.query_params["example"] == str(ids[49])
    at.button(key="datasets.example_next").click().run()  # the last row of page 1: on to page 2
    assert at.subheader[0].value == f"Example {ids[50]}"
    assert at.query_params["page"] == "2" and "showing 51-60" in markdown_text(at)

    at.button(key="datasets.example_previous").click().run()
    assert at.subheader[0].value == f"Example {ids[49]}"
    assert "page" not in at.query_params and "showing 1-50" in markdown_text(at)
    # The opened example is brought into view once per example opened.
    scripts = [e.proto.body for e in at.get("html")]
    assert any(f"example {ids[49]}" in body and "scrollIntoView" in body for body in scripts)


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

    datasets.label(seeded, min(refunds), review_state="rejected")  # changed after the action: the undo leaves it
    at.button(key="datasets.undo_browse_bulk").click().run()
    assert matching(seeded, review_state="accepted") == 0 and matching(seeded, review_state="rejected") == 1
    assert [s.value for s in at.success] == ["Undone: 3 examples restored; 1 example changed since and was left as it is."]
    assert matching(seeded, tags=["urgent"]) == 4  # only the last action is undone


def test_bulk_delete_needs_confirmation(seeded: Store) -> None:
    at = run(DATASETS, q="refund")

    at.selectbox(key="datasets.bulk_action").set_value("delete").run()
    assert at.button(key="datasets.bulk_apply").disabled

    at.checkbox(key="datasets.bulk_confirm").check().run()
    at.button(key="datasets.bulk_apply").click().run()
    assert matching(seeded) == 17


@pytest.mark.parametrize("search", ["script", "onerror"])
def test_hostile_text_is_shown_as_text(seeded: Store, search: str) -> None:
    target = datasets.get_example(seeded, example_id(seeded, search))
    at = run(DATASETS, example=str(target.id))

    # The turn is shown verbatim in a code element, which the browser never interprets.
    assert target.messages[0].content in code_values(at)
    # Nothing of it reaches a Markdown element unescaped.
    rendered = markdown_text(at)
    assert not re.search(r"(?<!\\)[<>\[\]]|(?<!\\)\*\*bold|(?<!\\):red|onerror", rendered)


EXACT = "Keep -- this -> exact\n\tindented with a tab\n  two spaces, mail a.b@example.com, see https://example.com/x_y\n"


def test_content_is_shown_exactly_as_stored(db: Store, write_jsonl: WriteJsonl) -> None:
    """Markdown turned ' -- ' into a dash, '->' into an arrow, collapsed tabs and hid word joiners in emails."""
    importing.import_path(db, write_jsonl([chat("\nLeading and trailing newlines\n", EXACT, system="Be\texact.")]), "exact")
    target = datasets.browse(db, "exact", ExampleFilter()).examples[0]
    at = run(DATASETS, example=str(target.id))

    shown = code_values(at)
    assert shown[:3] == ["Be\texact.", "\nLeading and trailing newlines\n", EXACT]
    assert not any("\u2060" in text for text in [*shown, markdown_text(at)])
    assert at.segmented_control(key="datasets.example_view").value == "Text"

    at.segmented_control(key="datasets.example_view").set_value("Rendered").run()
    assert EXACT in markdown_text(at) and EXACT not in code_values(at)

    at.segmented_control(key="datasets.example_view").set_value("JSON").run()
    assert at.selectbox(key="datasets.example_format").value == "openai"  # the dataset's own format
    assert orjson.loads(code_values(at)[0]) == datasets.record_json(db, target.id or 0, "openai").record
    at.selectbox(key="datasets.example_format").set_value("prompt-completion").run()
    record = orjson.loads(code_values(at)[0])
    assert record == {"prompt": "Be\texact.\n\n\nLeading and trailing newlines\n", "completion": EXACT}
    # The system prompt is written in front of the prompt: kept, so nothing is reported as not carried.
    assert not [w for w in at.warning if "Not carried into this format" in w.value]


def test_long_turns_fold_and_the_rest_stays_in_view(db: Store, write_jsonl: WriteJsonl) -> None:
    long = "\n".join(f"line {i} of a long answer" for i in range(200))
    importing.import_path(db, write_jsonl([chat("short question", long)]), "long")
    at = run(DATASETS, example=str(datasets.browse(db, "long", ExampleFilter()).examples[0].id))

    folded = [e for e in at.expander if "Show the whole turn 2 (assistant)" in e.label]
    assert len(folded) == 1 and f"{len(long):,} characters, 200 lines" in folded[0].label
    assert code_values(at)[:2] == ["short question", "\n".join(long.split("\n")[:6])]
    assert long in code_values(at)  # the whole turn, inside the fold


def test_pii_findings_are_listed_by_turn_and_scrubbed_with_one_click(seeded: Store) -> None:
    target = example_id(seeded, "email")
    at = run(DATASETS, example=str(target))
    findings = at.dataframe[1].value
    assert findings.to_dict("records") == [{"kind": "email", "where": "turn 1 (user)", "text": "jane.doe@example.com"}]

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
    task = tasks.latest(seeded, "support", "export")
    assert task is not None and task.result is not None
    lines = Path(task.result["path"]).read_text().splitlines()  # the file the task wrote, offered for download
    assert len(lines) == 21 == task.result["written"]
    assert {m.label: m.value for m in at.metric}["Scrubbed"] == "1"
    assert not any("jane.doe@example.com" in line for line in lines)


def test_validate_reports_against_a_target(seeded: Store) -> None:
    at = run(DATASETS, tab="Validate")

    at.selectbox(key="datasets.target").set_value("openai").run()
    at.button(key="datasets.validate").click().run()

    assert {m.label: m.value for m in at.metric}["Records"] == "21"
    assert not at.error and at.success[0].value == "Ready for OpenAI chat fine-tuning: no errors in 21 records."
    # Repeated findings are one row per code with the true count; the heading and the metric count every record.
    rows = next(d.value for d in at.dataframe if "code" in d.value.columns)
    counts = dict(zip(rows["code"], rows["records"], strict=True))
    assert len(rows) == len(counts)
    assert (counts["missing_system_message"], counts["below_recommended_examples"]) == (21, 1)
    listed = rows[rows["code"] == "missing_system_message"].iloc[0]["examples"]
    assert re.fullmatch(r"line 1 \(#\d+\), .*, line 5 \(#\d+\) \+16 more", listed), listed  # 5 of 21 records
    assert f"**Warnings ({sum(counts.values())})**" in markdown_text(at)
    assert {m.label: m.value for m in at.metric}["Warnings"] == str(sum(counts.values()))
    assert "Rules checked for OpenAI chat fine-tuning" in [e.label for e in at.expander][-1]
    assert len(at.get("plotly_chart")) >= 3


def test_validate_shows_a_rejection_with_its_rules_and_sources(seeded: Store) -> None:
    at = run(DATASETS, tab="Validate")

    at.selectbox(key="datasets.target").set_value("bedrock-claude-haiku").run()
    at.button(key="datasets.validate").click().run()

    assert at.error[0].value == "Bedrock: Claude 3 Haiku would reject this file: 1 error."  # 21 records, 32 needed
    assert "**Errors (1)**" in markdown_text(at)
    rules = next(d.value for d in at.dataframe if "codes" in d.value.columns)
    assert "too_many_total_examples" in " ".join(rules["codes"])
    assert all(source.startswith("https://") for source in rules["source"])
    assert {"rule", "severity", "origin", "requires", "note"} <= set(rules.columns)
    # Each finding row names the rule it breaks, as the catalogue lists it, with that rule's source.
    spec = get_target("bedrock-claude-haiku")
    errors = next(d.value for d in at.dataframe if "code" in d.value.columns)
    for row in errors.to_dict("records"):
        rule = spec.rule_for(row["code"], "error")
        assert row["rule"] == (rule.id if rule else "")
        assert row["source"] == (rule.source if rule and rule.id else None)
        assert not rule or not rule.id or row["rule"] in set(rules["rule"])
    assert any(errors["rule"]), "the record-count error breaks a rule the catalogue names"


def test_validate_all_judges_each_split_and_lists_each_finding_with_its_own_message(seeded: Store) -> None:
    counts = split_dataset(seeded, "support", (0.8, 0.1, 0.1), seed=1).counts
    at = run(DATASETS, tab="Validate")

    at.selectbox(key="datasets.target").set_value("bedrock-claude-haiku").run()
    assert at.selectbox(key="datasets.validate_split").value == "all"
    at.button(key="datasets.validate").click().run()

    # The same verdict as the CLI without --split: each split against its own limits, as a launch judges it.
    expected = validating.validate_dataset(seeded, "support", "bedrock-claude-haiku")
    assert at.error[0].value == f"Bedrock: Claude 3 Haiku would reject this file: {expected.error_count} errors."
    assert {m.label: m.value for m in at.metric}["Records"] == "21"
    at.selectbox(key="datasets.validation_group").set_value(
        next(o for o in at.selectbox(key="datasets.validation_group").options if "too_few_examples" in o)
    ).run()
    rows = next(d.value for d in at.dataframe if "line" in d.value.columns)
    assert list(rows["message"]) == [
        f"The train split has {counts['train']} records; Bedrock: Claude 3 Haiku needs 32 to 10,000. "
        f"Add {32 - counts['train']}.",
        f"The validation split has {counts['validation']} records; Bedrock: Claude 3 Haiku needs 32 to 1,000. "
        f"Add {32 - counts['validation']}.",
    ]


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


def test_the_rule_form_starts_empty_after_a_rule_is_added_and_keeps_a_rejected_one(seeded: Store) -> None:
    at = run(DATASETS, tab="Clean")
    at.text_input(key="datasets.rule_name").input("bad regex")
    at.text_area(key="datasets.rule_pattern").input("(unclosed")
    at.button(key="datasets.rule_submit").click().run()
    assert at.error and at.text_area(key="datasets.rule_pattern").value == "(unclosed"  # kept, to fix it

    at.text_area(key="datasets.rule_pattern").input("refunds?")
    at.text_input(key="datasets.rule_message").input("Money talk")
    at.selectbox(key="datasets.rule_action").set_value("warn")
    at.button(key="datasets.rule_submit").click().run()

    assert [r.name for r in cleaning.list_rules(seeded)] == ["bad regex"]
    assert at.text_input(key="datasets.rule_name").value == ""
    assert at.text_area(key="datasets.rule_pattern").value == ""
    assert at.text_input(key="datasets.rule_message").value == ""
    assert at.selectbox(key="datasets.rule_action").value == "block"  # as a fresh form shows it


def test_deleting_a_rule_asks_first_and_says_it_affects_every_dataset(seeded: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(seeded, write_jsonl([chat("other", "dataset")], name="other.jsonl"), "other")
    rule = cleaning.add_rule(seeded, name="no refunds", words="refund")
    at = run(DATASETS, tab="Clean")

    at.button(key=f"datasets.rule_delete_{rule.id}").click().run()
    assert [r.id for r in cleaning.list_rules(seeded)] == [rule.id]  # one click deletes nothing
    assert "every dataset (2 datasets in this workspace)" in at.warning[0].value

    at.button(key="datasets.rule_delete_cancel").click().run()
    assert not at.warning and [r.id for r in cleaning.list_rules(seeded)] == [rule.id]

    at.button(key=f"datasets.rule_delete_{rule.id}").click().run()
    at.button(key="datasets.rule_delete_confirm").click().run()
    assert cleaning.list_rules(seeded) == []
    assert "Rule no refunds deleted." in [m.value for m in at.success]


def test_repeated_findings_are_one_row_per_kind_with_exact_counts(db: Store, write_jsonl: WriteJsonl) -> None:
    records = [chat(f"Write to user{i}@example.com about refund {i}", "Sorry, no refund.", system="Be kind.") for i in range(40)]
    records.append(chat("Call me", "Sure.", system="My mail is boss@example.com"))
    importing.import_path(db, write_jsonl(records), "mail")
    cleaning.add_rule(db, name="refunds", words="refund", action="block")
    at = run(DATASETS, tab="Clean")

    pii = at.dataframe[0].value
    assert pii[["kind", "findings", "examples"]].to_dict("records") == [{"kind": "email", "findings": 41, "examples": 41}]
    at.selectbox(key="datasets.pii_group").select_index(1).run()
    where = at.dataframe[1].value
    assert len(where) == 41
    assert where["where"].value_counts().to_dict() == {"turn 1 (user)": 40, "system": 1}

    at.button(key="datasets.run_rules").click().run()
    rules = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert rules[["rule", "action", "findings", "examples"]].to_dict("records") == [
        {"rule": "refunds", "action": "block", "findings": 80, "examples": 40}
    ]
    at.selectbox(key="datasets.rule_group").select_index(1).run()
    matches = at.dataframe[-1].value
    assert len(matches) == 50 and set(matches["where"]) == {"turn 1 (user)", "turn 2 (assistant)"}
    assert "The first 50 of 80 are listed." in [c.value for c in at.caption]


def test_a_dataset_is_renamed_described_and_deleted_from_the_page(seeded: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(seeded, write_jsonl([chat("other", "dataset")], name="other.jsonl"), "other")
    at = run(DATASETS, dataset="support")

    at.text_input(key="datasets.manage_name").input("bad\tname")
    at.button(key="datasets.manage_rename").click().run()
    assert "may not contain control characters" in at.error[0].value
    assert {d.name for d in datasets.list_datasets(seeded)} == {"support", "other"}

    at.text_input(key="datasets.manage_name").input("support-2024")
    at.button(key="datasets.manage_rename").click().run()
    assert at.selectbox(key="datasets.dataset").value == "support-2024" and at.query_params["dataset"] == "support-2024"
    assert "Renamed support to support\\-2024." in at.success[0].value

    at.text_area(key="datasets.manage_description").input("Tickets from the 2024 help desk")
    at.button(key="datasets.manage_describe").click().run()
    assert datasets.get_dataset(seeded, "support-2024").description == "Tickets from the 2024 help desk"

    assert at.button(key="datasets.manage_delete").disabled
    assert "Removes 21 examples, 0 versions and 1 import record" in "\n".join(c.value for c in at.caption)
    at.checkbox(key="datasets.manage_confirm").check().run()
    at.button(key="datasets.manage_delete").click().run()

    assert [d.name for d in datasets.list_datasets(seeded)] == ["other"]
    assert "Deleted support\\-2024: 21 examples, 0 versions and 1 import record." in at.success[0].value
    assert at.selectbox(key="datasets.dataset").value == "other" and at.query_params["dataset"] == "other"


def test_every_tab_names_a_turn_the_same_way(db: Store, write_jsonl: WriteJsonl) -> None:
    """Validation read OpenAI's record, where the system prompt is messages[0]; PII and rules count turns alone."""
    turns = [("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "mail me at jane.doe@example.com")]
    importing.import_path(db, write_jsonl([{"messages": [{"role": r, "content": c} for r, c in turns]}]), "one")
    cleaning.add_rule(db, name="mail", words="mail me", action="warn")
    target = datasets.browse(db, "one", ExampleFilter()).examples[0].id
    expected = "turn 3 (user)"

    at = run(DATASETS, example=str(target))
    assert at.dataframe[1].value["where"].tolist() == [expected]  # PII in the opened example

    at = run(DATASETS, tab="Clean")
    at.selectbox(key="datasets.pii_group").select_index(1).run()
    assert at.dataframe[1].value["where"].tolist() == [expected]
    at.button(key="datasets.run_rules").click().run()
    at.selectbox(key="datasets.rule_group").select_index(1).run()
    assert at.dataframe[-1].value["where"].tolist() == [expected]

    at = run(DATASETS, tab="Validate")
    at.selectbox(key="datasets.target").set_value("openai").run()
    at.button(key="datasets.validate").click().run()
    warnings = next(d.value for d in at.dataframe if "code" in d.value.columns and "last_not_assistant" in set(d.value["code"]))
    row = warnings[warnings["code"] == "last_not_assistant"].iloc[0]
    assert row["where"] == expected  # the record's own path is messages[3].role


def test_pages_use_the_icon_shipped_with_the_app() -> None:
    """A `:material/...:` page icon makes the browser fetch the favicon from fonts.gstatic.com: no good offline."""
    sources = {path.name: path.read_text() for path in [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]}
    for name, source in sources.items():
        assert "page_setup(" in source, name
        assert "set_page_config" not in source, name
    assert PAGE_ICON.is_file() and PAGE_ICON.read_text().lstrip().startswith("<svg")
    assert "http" not in PAGE_ICON.read_text().replace("http://www.w3.org/2000/svg", "")


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
