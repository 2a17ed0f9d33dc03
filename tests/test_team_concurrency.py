"""Two people saving the same example at once: the second save is refused by name and writes nothing.

Each save carries the revision its author loaded (`expected_revision`); the check runs under the
store's write lock, so two saves released together on two threads (or in two processes) cannot
both land, whichever wins.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import WriteJsonl
from workbench.domain.access import Actor, Role
from workbench.domain.example import Message
from workbench.domain.example import Role as TurnRole
from workbench.domain.filters import ExampleFilter
from workbench.errors import Conflict
from workbench.services import access, datasets
from workbench.services.importing import import_path
from workbench.store import Store
from workbench.store import audit as audit_rows

ANA = Actor(email="ana@acme.com", name="Ana", role=Role.REVIEWER, via="oidc")
BEN = Actor(email="ben@acme.com", name="Ben", role=Role.ENGINEER, via="oidc")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> int:
    import_path(store, write_jsonl(sample_records), "support")
    found = datasets.browse(store, "support", ExampleFilter(search="refund")).examples[0]
    assert found.id is not None
    return found.id


def _at_once(calls: dict[Actor, Callable[[], Any]]) -> dict[str, Any]:
    """Run each call on its own thread as its actor, released together; return each actor's result or error."""
    barrier = threading.Barrier(len(calls))
    outcome: dict[str, Any] = {}

    def run(actor: Actor, call: Callable[[], Any]) -> None:
        with access.acting_as(actor):
            barrier.wait()
            try:
                outcome[actor.email] = call()
            except Exception as exc:  # noqa: BLE001 - the test looks at which error each got
                outcome[actor.email] = exc

    threads = [threading.Thread(target=run, args=(actor, call)) for actor, call in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcome


def _winner_and_loser(outcome: dict[str, Any]) -> tuple[str, Conflict]:
    conflicts = {who: r for who, r in outcome.items() if isinstance(r, Conflict)}
    landed = [who for who, r in outcome.items() if not isinstance(r, Exception)]
    assert len(conflicts) == 1 and len(landed) == 1, outcome
    return landed[0], next(iter(conflicts.values()))


def refused_by(winner: str) -> str:
    return BEN.email if winner == ANA.email else ANA.email


def test_two_label_saves_from_the_same_revision_land_once_and_the_other_names_the_first(store: Store, example: int) -> None:
    loaded = datasets.get_example(store, example).revision
    outcome = _at_once({
        ANA: lambda: datasets.label(store, example, notes="ana's note", expected_revision=loaded),
        BEN: lambda: datasets.label(store, example, notes="ben's note", expected_revision=loaded),
    })

    winner, refused = _winner_and_loser(outcome)
    now = datasets.get_example(store, example)
    assert now.notes == f"{winner.split('@')[0]}'s note" and now.revision == loaded + 1
    message = str(refused)
    assert message.startswith(f"example #{example} was changed by {winner} at ") and " UTC after you opened it" in message
    assert f"(revision {loaded} → {loaded + 1}), so your edit was not saved" in message
    with store.connect() as db:
        labels = audit_rows.select(db, action="example.label")
    # The winner's change, and the loser's attempt as a refusal naming the conflict (nothing else of it written).
    assert sorted((e.actor, e.outcome) for e in labels) == sorted([(winner, "ok"), (refused_by(winner), "refused")])
    (conflict,) = [e for e in labels if e.outcome == "refused"]
    assert conflict.detail["reason"].startswith(f"conflict: example #{example} was changed by {winner}")


def test_two_turn_edits_from_the_same_revision_land_once_and_keep_one_revision_row(store: Store, example: int) -> None:
    loaded = datasets.get_example(store, example).revision

    def edit(text: str) -> Callable[[], Any]:
        turns = [Message(role=TurnRole.USER, content="Can I get a refund?"), Message(role=TurnRole.ASSISTANT, content=text)]
        return lambda: datasets.edit_turns(store, example, None, turns, expected_revision=loaded)

    outcome = _at_once({BEN: edit("Yes, within 30 days."), Actor(email="cy@acme.com", role=Role.ADMIN, via="oidc"): edit("No.")})

    winner, refused = _winner_and_loser(outcome)
    assert f"changed by {winner}" in str(refused)
    assert len(datasets.revisions(store, example)) == 1
    assert datasets.get_example(store, example).revision == loaded + 1


def test_a_save_on_a_copy_older_than_a_bulk_action_is_refused_and_writes_nothing(store: Store, example: int) -> None:
    opened = datasets.get_example(store, example)
    with access.acting_as(BEN):
        datasets.bulk(store, "support", ExampleFilter(search="refund"), "tag", "refunds")
    with access.acting_as(ANA), pytest.raises(Conflict, match=r"changed by ben@acme\.com .* \(revision 1 → 2\)"):
        datasets.label(store, example, tags=["mine"], expected_revision=opened.revision)
    after = datasets.get_example(store, example)
    assert after.tags == ["refunds"] and after.revision == 2
    with access.acting_as(ANA):  # without a revision (a script, the CLI) the save is not checked
        assert datasets.label(store, example, tags=["mine"]).revision == 3


def test_a_conflict_on_a_deleted_example_says_it_is_gone(store: Store, example: int) -> None:
    from workbench.errors import NotFound

    datasets.bulk(store, "support", ExampleFilter(search="refund"), "delete")
    with pytest.raises(NotFound, match=f"no example with id {example}"):
        datasets.label(store, example, notes="late", expected_revision=1)


SAVER = """
import sys, time
from pathlib import Path
from workbench.domain.access import Actor, Role
from workbench.errors import Conflict
from workbench.services import access, datasets
from workbench.store import Store

db, example, revision, email, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
while not go.exists():
    time.sleep(0.005)
with access.acting_as(Actor(email=email, role=Role.REVIEWER, via="oidc")):
    try:
        datasets.label(Store(db), example, notes=email, expected_revision=revision)
        print("saved")
    except Conflict as exc:
        print("conflict:", exc)
"""


def test_two_processes_saving_at_once_land_once(store: Store, example: int, tmp_path: Path) -> None:
    revision = datasets.get_example(store, example).revision
    go = tmp_path / "go"
    savers = [
        subprocess.Popen([sys.executable, "-c", SAVER, str(store.path), str(example), str(revision), who, str(go)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in ("ana@acme.com", "ben@acme.com")
    ]
    go.touch()
    said = [p.communicate(timeout=120) for p in savers]
    outputs = [out.strip() for out, _ in said]
    assert sorted(o.split(":")[0] for o in outputs) == ["conflict", "saved"], said
    winner = datasets.get_example(store, example).notes
    assert f"changed by {winner}" in next(o for o in outputs if o.startswith("conflict"))


def test_notes_are_bounded_and_a_refused_save_writes_nothing(store: Store, example: int) -> None:
    from workbench.errors import InvalidInput

    before = datasets.get_example(store, example)
    with pytest.raises(InvalidInput, match="at most 20,000 are kept"):
        datasets.label(store, example, notes="x" * (datasets.MAX_NOTES_CHARS + 1))
    assert datasets.get_example(store, example).revision == before.revision
