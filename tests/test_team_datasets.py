"""Team use on datasets: who may read, label and change them, that every change names its actor (in the
trail and on the example), and that a background task acts as the person who started it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.domain.access import Actor, Role
from workbench.domain.example import Message
from workbench.domain.example import Role as TurnRole
from workbench.domain.filters import ExampleFilter
from workbench.errors import Forbidden
from workbench.services import (
    access,
    cleaning,
    datasets,
    duplicates,
    exporting,
    splits,
    tasks,
    users,
    versions,
)
from workbench.services.importing import import_path
from workbench.store import Store
from workbench.store import audit as audit_rows
from workbench.store.audit import AuditEvent
from workbench.store.tasks import TaskState

ROOT = Path(__file__).resolve().parent.parent
ACTORS = {
    Role.ENGINEER: Actor(email="eve@acme.com", name="Eve", role=Role.ENGINEER, via="oidc"),
    Role.REVIEWER: Actor(email="rita@acme.com", name="Rita", role=Role.REVIEWER, via="oidc"),
    Role.PM: Actor(email="pat@acme.com", name="Pat", role=Role.PM, via="oidc"),
    Role.ADMIN: Actor(email="ada@acme.com", name="Ada", role=Role.ADMIN, via="oidc"),
}
NO_ROLE = Actor(email="nobody@elsewhere.com", name="Nobody", role=None, via="oidc")


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> Store:
    """The operator's dataset 'support' (20 examples), two exact duplicates in 'dups', a rule and a version."""
    import_path(store, write_jsonl(sample_records), "support")
    import_path(store, write_jsonl([chat("same question", "same answer"), chat("Same question", "same answer")], "d.jsonl"),
                "dups")
    cleaning.add_rule(store, name="no-swearing", words="darn")
    versions.freeze(store, "support", "v1")
    datasets.bulk(store, "support", ExampleFilter(search="refund"), "tag", "refunds")
    return store


def events(store: Store, **filters: Any) -> list[AuditEvent]:
    with store.connect() as db:
        return audit_rows.select(db, **filters)


def state(store: Store) -> tuple[Any, ...]:
    """Everything a dataset change could touch, to show that a refused call wrote none of it."""
    with store.connect() as db:
        return tuple(
            db.execute(sql).fetchall()
            for sql in (
                "SELECT id, revision, updated_by, split, review_state, rating, tags, notes, content_hash FROM examples ORDER BY id",
                "SELECT id, name, description, split_config FROM datasets ORDER BY id",
                "SELECT id, name, enabled FROM guardrail_rules ORDER BY id",
                "SELECT id, name FROM dataset_versions ORDER BY id",
                "SELECT id, undone FROM bulk_actions ORDER BY id",
                "SELECT count(*) FROM example_revisions",
                "SELECT count(*) FROM tasks",
            )
        )


def first_id(store: Store, dataset: str = "support", search: str = "") -> int:
    found = datasets.browse(store, dataset, ExampleFilter(search=search)).examples
    assert found and found[0].id is not None
    return found[0].id


TURNS = [Message(role=TurnRole.USER, content="Where is my parcel?"), Message(role=TurnRole.ASSISTANT, content="On its way.")]


def _resolve(store: Store) -> Any:
    groups = duplicates.find_duplicates(store, "dups", threshold=0.8)
    return duplicates.resolve_duplicates(store, "dups", groups)


def _rule_id(store: Store) -> int:
    with store.connect() as db:
        return int(db.execute("SELECT id FROM guardrail_rules").fetchone()[0])


def _import(store: Store) -> Any:
    path = store.path.parent / "more.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "new one"}, {"role": "assistant", "content": "ok"}]}\n')
    return import_path(store, path, "support")


WRITES: dict[str, tuple[str, Callable[[Store], Any]]] = {
    # name: (audit action, call)
    "edit turns": ("example.edit", lambda s: datasets.edit_turns(s, first_id(s), None, TURNS)),
    "bulk tag": ("examples.bulk_tag", lambda s: datasets.bulk(s, "support", ExampleFilter(search="shipping"), "tag", "x")),
    "bulk delete": ("examples.bulk_delete", lambda s: datasets.bulk(s, "support", ExampleFilter(search="shipping"), "delete")),
    "undo": ("examples.bulk_undo", lambda s: datasets.undo_last_bulk(s, "support")),
    "rename": ("dataset.rename", lambda s: datasets.rename_dataset(s, "support", "help")),
    "describe": ("dataset.describe", lambda s: datasets.describe_dataset(s, "support", "tickets")),
    "delete": ("dataset.delete", lambda s: datasets.delete_dataset(s, "dups")),
    "import": ("dataset.import", _import),
    "split": ("dataset.split", lambda s: splits.split_dataset(s, "support", (0.8, 0.1, 0.1))),
    "freeze": ("dataset.freeze", lambda s: versions.freeze(s, "support", "v2")),
    "scrub dataset": ("dataset.scrub", lambda s: cleaning.scrub_dataset(s, "support")),
    "scrub example": ("example.scrub", lambda s: cleaning.scrub(s, first_id(s, search="email"))),
    "resolve duplicates": ("duplicates.resolve", _resolve),
    "rule create": ("rule.create", lambda s: cleaning.add_rule(s, name="pii-words", words="password")),
    "rule enable": ("rule.enable", lambda s: cleaning.set_rule_enabled(s, _rule_id(s), False)),
    "rule delete": ("rule.delete", lambda s: cleaning.delete_rule(s, _rule_id(s))),
    "task split": ("task.split", lambda s: tasks.start(s, "split", "support", {"ratios": [0.8, 0.1, 0.1]})),
}
LABELS: dict[str, Callable[[Store], Any]] = {
    "rating": lambda s: datasets.label(s, first_id(s), rating=4),
    "review state": lambda s: datasets.label(s, first_id(s), review_state="accepted"),
    "tags and notes": lambda s: datasets.label(s, first_id(s), tags=["checked"], notes="fine"),
}
READS: dict[str, Callable[[Store], Any]] = {
    "list": lambda s: datasets.list_datasets(s),
    "show": lambda s: datasets.get_dataset(s, "support"),
    "browse": lambda s: datasets.browse(s, "support", ExampleFilter(search="refund")),
    "example": lambda s: datasets.get_example(s, 1),
    "versions": lambda s: versions.list_versions(s, "support"),
    "rules": lambda s: cleaning.list_rules(s),
    "pii scan": lambda s: cleaning.pii_summary(s, "support"),
    "run rules": lambda s: cleaning.run_guardrails(s, "support"),
    "export": lambda s: exporting.export_bytes(s, "support", "openai"),
}
MAY_WRITE = {Role.ENGINEER: True, Role.ADMIN: True, Role.REVIEWER: False, Role.PM: False}
MAY_LABEL = {Role.ENGINEER: True, Role.ADMIN: True, Role.REVIEWER: True, Role.PM: False}


@pytest.fixture(autouse=True)
def _inline_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")


def _check(store: Store, actor: Actor, action: str, call: Callable[[Store], Any], allowed: bool) -> None:
    before = state(store)
    with access.acting_as(actor):
        if not allowed:
            with pytest.raises(Forbidden, match=actor.email):
                call(store)
        else:
            call(store)
    if allowed:
        assert state(store) != before
        done = events(store, actor=actor.email, action=action, outcome="ok")
        assert done and done[0].role == (actor.role.value if actor.role else None)
    else:
        assert state(store) == before, "a refused call wrote something"
        refused = events(store, actor=actor.email, action=action, outcome="refused")
        assert len(refused) == 1 and refused[0].via == "oidc"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(WRITES))
def test_changing_a_dataset_needs_datasets_write(loaded: Store, name: str, role: Role) -> None:
    action, call = WRITES[name]
    _check(loaded, ACTORS[role], action, call, MAY_WRITE[role])


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(LABELS))
def test_labelling_one_example_needs_labels_write(loaded: Store, name: str, role: Role) -> None:
    _check(loaded, ACTORS[role], "example.label", LABELS[name], MAY_LABEL[role])


@pytest.mark.parametrize("name", list(READS))
def test_every_role_reads_datasets_and_no_role_reads_nothing(loaded: Store, name: str) -> None:
    for actor in ACTORS.values():
        with access.acting_as(actor):
            READS[name](loaded)
    with access.acting_as(NO_ROLE), pytest.raises(Forbidden, match="datasets.read"):
        READS[name](loaded)
    assert events(loaded, actor=NO_ROLE.email, outcome="refused")
    assert events(loaded, actor=ACTORS[Role.PM].email) == [], "a read that is allowed leaves no trail"


def test_a_label_names_the_reviewer_on_the_example_and_in_the_trail(loaded: Store) -> None:
    target = first_id(loaded)
    before = datasets.get_example(loaded, target)
    with access.acting_as(ACTORS[Role.REVIEWER]):
        after = datasets.label(loaded, target, rating=2, notes="wrong tone", tags=["tone"])
    assert after.revision == before.revision + 1
    with loaded.connect() as db:
        assert db.execute("SELECT updated_by FROM examples WHERE id = ?", [target]).fetchone()[0] == "rita@acme.com"
    (event,) = events(loaded, action="example.label")
    assert (event.actor, event.target) == ("rita@acme.com", f"example:{target}")
    assert event.detail == {"rating": 2, "tags": ["tone"], "notes_chars": 10}


def test_a_bulk_action_stamps_every_example_in_one_statement_and_records_count_and_filter(loaded: Store) -> None:
    flt = ExampleFilter(search="shipping")
    chosen = [e.id for e in datasets.browse(loaded, "support", flt).examples]
    with loaded.connect() as db:
        revisions = dict(db.execute("SELECT id, revision FROM examples").fetchall())
    with access.acting_as(ACTORS[Role.ENGINEER]):
        result = datasets.bulk(loaded, "support", flt, "move-to-split", "test")
    with loaded.connect() as db:
        rows = dict((i, (r, by)) for i, r, by in db.execute("SELECT id, revision, updated_by FROM examples").fetchall())
    assert result.affected == len(chosen) > 0
    assert all(rows[i] == (revisions[i] + 1, "eve@acme.com") for i in chosen)
    assert all(rows[i][0] == revisions[i] for i in rows if i not in chosen), "examples outside the filter moved on"
    (event,) = events(loaded, action="examples.bulk_move_to_split")
    assert event.actor == "eve@acme.com" and event.target.startswith("dataset:")
    assert event.detail == {"count": len(chosen), "value": "test", "filter": {"search": "shipping"}}

    with access.acting_as(ACTORS[Role.ADMIN]):
        datasets.undo_last_bulk(loaded, "support")
    (undo,) = events(loaded, action="examples.bulk_undo")
    assert (undo.actor, undo.detail["restored"], undo.detail["undid"]) == ("ada@acme.com", len(chosen), "move-to-split")
    with loaded.connect() as db:
        assert {by for (by,) in db.execute("SELECT DISTINCT updated_by FROM examples WHERE split = 'unassigned' "
                                           f"AND id IN ({','.join(map(str, chosen))})")} == {"ada@acme.com"}


def test_a_task_records_who_started_it_and_runs_as_them(loaded: Store) -> None:
    with access.acting_as(ACTORS[Role.ENGINEER]):
        task = tasks.start(loaded, "split", "support", {"ratios": [0.8, 0.1, 0.1], "requested_by": {"email": "forged"}})
    assert task.state is TaskState.DONE, task.error
    assert task.params["requested_by"] == {"email": "eve@acme.com", "name": "Eve", "role": "engineer", "via": "oidc"}
    (event,) = events(loaded, action="dataset.split")
    assert event.actor == "eve@acme.com"
    with loaded.connect() as db:
        assert db.execute("SELECT count(*) FROM examples WHERE updated_by = 'eve@acme.com'").fetchone()[0] > 0
    # The same work asked by someone else is the same task: who asked is not part of it.
    assert tasks.latest(loaded, "support", "split", {"ratios": [0.8, 0.1, 0.1]}) is not None


def test_a_task_run_by_its_own_process_acts_as_the_person_who_started_it(
    loaded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE")
    monkeypatch.setenv("WORKBENCH_USER", "server-operator")
    with access.acting_as(ACTORS[Role.ENGINEER]):
        task = tasks.start(loaded, "freeze", "support", {"name": "v9"})
    deadline = time.monotonic() + 120
    while (task := tasks.get(loaded, task.id)).state.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert task.state is TaskState.DONE, task.error
    (event,) = events(loaded, action="dataset.freeze", outcome="ok", target=None, actor="eve@acme.com")
    assert event.detail["version"] == "v9" and event.role == "engineer"
    assert os.environ["WORKBENCH_USER"] == "server-operator"
    assert not events(loaded, actor="server-operator")


def test_starting_a_task_needs_the_actions_permission(loaded: Store) -> None:
    with access.acting_as(ACTORS[Role.REVIEWER]):
        assert tasks.start(loaded, "pii_scan", "support").state is TaskState.DONE  # reading: allowed
        with pytest.raises(Forbidden, match="rita@acme.com"):
            tasks.start(loaded, "pii_scrub", "support")
    (refused,) = events(loaded, actor="rita@acme.com", outcome="refused")
    assert refused.action == "task.pii_scrub"


def _queued_export(store: Store, started_by: Actor) -> int:
    from workbench.store import datasets as dataset_rows
    from workbench.store import tasks as task_rows

    with store.write() as db:
        params = {"format": "openai", "requested_by": started_by.model_dump(mode="json")}
        return task_rows.create_task(db, "export", dataset_rows.dataset_id(db, "support"), params)


@pytest.mark.parametrize(("who", "allowed"), [
    (Role.ENGINEER, True),  # the person who started it
    (Role.PM, False),  # may read and export, not stop someone else's work
    (Role.ADMIN, True),
])
def test_stopping_someone_elses_task_needs_write_access_and_is_recorded(loaded: Store, who: Role, allowed: bool) -> None:
    task_id = _queued_export(loaded, ACTORS[Role.ENGINEER])
    with access.acting_as(ACTORS[who]):
        if allowed:
            assert tasks.cancel(loaded, task_id).cancel_requested
        else:
            with pytest.raises(Forbidden):
                tasks.cancel(loaded, task_id)
    assert tasks.get(loaded, task_id).cancel_requested is allowed
    outcome = "ok" if allowed else "refused"
    (event,) = events(loaded, action="task.cancel", outcome=outcome)
    assert (event.actor, event.target) == (ACTORS[who].email, f"task:{task_id}")


# -------------------------------------------------------------------------------------------- page


@pytest.fixture
def team(loaded: Store, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Iterator[Store]:
    monkeypatch.setenv("WORKBENCH_DB", str(loaded.path))
    for who, role in (("rita@acme.com", "reviewer"), ("pat@acme.com", "pm"), ("eve@acme.com", "engineer")):
        users.assign(loaded, who, role)
    yield loaded
    access.set_process_default(access.operator())
    access.set_resolver(None)


def signed_in(email: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/1_Datasets.py"), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_the_page_offers_a_pm_no_import_no_bulk_actions_and_says_why(team: Store) -> None:
    at = signed_in("pat@acme.com", dataset="support", tab="Browse")
    assert "Import" not in [t.label for t in at.tabs]
    assert "Your role (pm) can read datasets but not run bulk actions on them (needs datasets.write)." in captions(at)
    assert not [b for b in at.button if b.key == "datasets.bulk_apply"]


def test_the_example_editor_offers_a_reviewer_labels_but_not_turn_edits(team: Store) -> None:
    target = first_id(team)
    at = signed_in("rita@acme.com", dataset="support", tab="Browse", example=str(target))
    assert [b for b in at.button if b.key == "datasets.label_save"]
    assert not [b for b in at.button if b.key == "datasets.edit_save"]
    assert "can read this example but not edit its turns (needs datasets.write)" in captions(at)
    pm = signed_in("pat@acme.com", dataset="support", tab="Browse", example=str(target))
    assert not [b for b in pm.button if b.key == "datasets.label_save"]
    assert "Your role (pm) can read this example but not label it (needs labels.write)." in captions(pm)


def test_a_save_over_someone_elses_change_is_refused_and_keeps_what_was_typed(team: Store) -> None:
    target = first_id(team)
    at = signed_in("rita@acme.com", dataset="support", tab="Browse", example=str(target))
    at.text_area(key="datasets.label_notes").input("my careful note")
    with access.acting_as(ACTORS[Role.ENGINEER]):
        datasets.label(team, target, notes="engineer was here")
    at.button(key="datasets.label_save").click().run()

    errors = [e.value.replace("\\", "").replace("\u2060", "") for e in at.error]  # shown escaped, as Markdown
    assert any(f"example #{target} was changed by eve@acme.com" in e and "your edit was not saved" in e for e in errors), errors
    assert at.text_area(key="datasets.label_notes").value == "my careful note"
    assert "engineer was here" in captions(at)
    with access.acting_as(ACTORS[Role.ADMIN]):  # the page left a signed-in process: unbound code has no role
        assert datasets.get_example(team, target).notes == "engineer was here"

    at.button(key="datasets.label_save").click().run()  # seen their change: saving again is a choice
    with access.acting_as(ACTORS[Role.ADMIN]):
        assert datasets.get_example(team, target).notes == "my careful note"


def test_a_turn_edit_refused_by_a_conflict_stays_in_the_editor_until_saved_again(team: Store) -> None:
    target = first_id(team)
    at = signed_in("eve@acme.com", dataset="support", tab="Browse", example=str(target))
    # AppTest cannot type into a data_editor; it takes the edit state the browser would send.
    at.session_state["datasets.edit_turns"] = {"edited_rows": {1: {"content": "A better answer"}}, "added_rows": [],
                                               "deleted_rows": []}
    with access.acting_as(ACTORS[Role.REVIEWER]):
        datasets.label(team, target, rating=1)
    at.button(key="datasets.edit_save").click().run()

    assert any("changed by rita@acme.com" in e.value.replace("\\", "").replace("\u2060", "") for e in at.error)
    assert any("The editor holds your edit" in w.value for w in at.warning)
    assert at.session_state["datasets.edit_draft"]["messages"][1]["content"] == "A better answer"
    with access.acting_as(ACTORS[Role.ADMIN]):
        assert datasets.get_example(team, target).messages[1].content != "A better answer"

    at.button(key="datasets.edit_save").click().run()
    with access.acting_as(ACTORS[Role.ADMIN]):
        saved = datasets.get_example(team, target)
    assert saved.messages[1].content == "A better answer" and saved.rating == 1
    assert "datasets.edit_draft" not in at.session_state
