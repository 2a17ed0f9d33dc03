"""Rows of the prompt template tables (m011): templates, their immutable versions, labels and label moves.

A version row is never updated (a trigger refuses it): an edit is a new version. A label is one row
per (template, label) pointing at a version; every move also lands in `prompt_label_moves`, so the
history of what `production` pointed at, and who moved it, is kept.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlite_utils import Database

from workbench.domain.templates import LabelMove, Template, TemplateVersion, VersionContent
from workbench.errors import Conflict
from workbench.store import utcnow


def _template(row: dict[str, Any]) -> Template:
    return Template.model_validate(row)


def list_templates(db: Database) -> list[Template]:
    """Return every template, by name."""
    return [_template(row) for row in db.query("SELECT * FROM prompt_templates ORDER BY name")]


def template_names(db: Database) -> list[str]:
    """Return every template's name, in order: what a 'no such template' message lists."""
    return [row[0] for row in db.execute("SELECT name FROM prompt_templates ORDER BY name")]


def find_template(db: Database, name: str) -> Template | None:
    """Return the template with this name, or None."""
    rows = list(db.query("SELECT * FROM prompt_templates WHERE name = ?", [name]))
    return _template(rows[0]) if rows else None


def create_template(db: Database, name: str, *, description: str, task_type: str) -> Template:
    """Insert a template; the name must be new."""
    now = utcnow()
    try:
        db.execute(
            "INSERT INTO prompt_templates (name, description, task_type, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [name, description, task_type, now, now],
        )
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(f"a template named {name!r} already exists") from exc
        raise
    template = find_template(db, name)
    assert template is not None
    return template


def update_template(db: Database, template_id: int, *, description: str | None = None, task_type: str | None = None) -> None:
    """Change a template's description or task type (not versioned: they describe the template, not a prompt)."""
    sets = {k: v for k, v in (("description", description), ("task_type", task_type)) if v is not None}
    if not sets:
        return
    sets["updated_at"] = utcnow()
    assignments = ", ".join(f"{column} = ?" for column in sets)
    db.execute(f"UPDATE prompt_templates SET {assignments} WHERE id = ?", [*sets.values(), template_id])


_VERSION_SELECT = """
    SELECT v.*, t.name AS template,
        (SELECT json_group_array(l.label) FROM (SELECT label FROM prompt_labels WHERE version_id = v.id ORDER BY label) l) AS labels
    FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id
"""


def _version(row: dict[str, Any]) -> TemplateVersion:
    row = dict(row)
    for column in ("variables", "few_shot", "settings", "labels"):
        row[column] = orjson.loads(row[column] or "[]")
    return TemplateVersion.model_validate(row)


def insert_version(
    db: Database, template_id: int, number: int, content: VersionContent, *,
    variables: list[str], commit_message: str, created_by: str | None,
) -> int:
    """Insert version `number` of a template and return its row id."""
    cursor = db.execute(
        """
        INSERT INTO prompt_versions (template_id, version, system_template, user_template, variables, few_shot,
            cot_instruction, settings, commit_message, content_hash, created_by, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            template_id, number, content.system_template, content.user_template, orjson.dumps(variables).decode(),
            orjson.dumps([s.model_dump(mode="json") for s in content.few_shot]).decode(), content.cot_instruction,
            content.settings.model_dump_json(), commit_message, content.digest(), created_by, utcnow(),
        ],
    )
    db.execute("UPDATE prompt_templates SET updated_at = ? WHERE id = ?", [utcnow(), template_id])
    return int(cursor.lastrowid or 0)


def versions(db: Database, template_id: int) -> list[TemplateVersion]:
    """Return a template's versions, oldest first."""
    return [_version(row) for row in db.query(_VERSION_SELECT + " WHERE v.template_id = ? ORDER BY v.version", [template_id])]


def version_numbers(db: Database, template_id: int) -> list[int]:
    """Return a template's version numbers, cheaply."""
    return [row[0] for row in db.execute("SELECT version FROM prompt_versions WHERE template_id = ? ORDER BY version", [template_id])]


def get_version(db: Database, template_id: int, number: int) -> TemplateVersion | None:
    """Return version `number` of a template, or None."""
    rows = list(db.query(_VERSION_SELECT + " WHERE v.template_id = ? AND v.version = ?", [template_id, number]))
    return _version(rows[0]) if rows else None


def get_version_by_id(db: Database, version_id: int) -> TemplateVersion | None:
    """Return a version by its row id (what comparisons and evaluations keep), or None."""
    rows = list(db.query(_VERSION_SELECT + " WHERE v.id = ?", [version_id]))
    return _version(rows[0]) if rows else None


def newest_version(db: Database, template_id: int) -> TemplateVersion | None:
    """Return a template's highest-numbered version, or None when it has none."""
    rows = list(db.query(_VERSION_SELECT + " WHERE v.template_id = ? ORDER BY v.version DESC LIMIT 1", [template_id]))
    return _version(rows[0]) if rows else None


def labels(db: Database, template_id: int) -> dict[str, int]:
    """Return each label of a template and the version number it points at."""
    rows = db.execute(
        """
        SELECT l.label, v.version FROM prompt_labels l JOIN prompt_versions v ON v.id = l.version_id
        WHERE l.template_id = ? ORDER BY l.label
        """,
        [template_id],
    )
    return {label: number for label, number in rows}


def move_label(db: Database, template_id: int, label: str, version_id: int, moved_by: str | None) -> bool:
    """Point a label at a version and record the move; False (and nothing written) when it already points there."""
    row = db.execute(
        """
        SELECT l.version_id, v.version FROM prompt_labels l JOIN prompt_versions v ON v.id = l.version_id
        WHERE l.template_id = ? AND l.label = ?
        """,
        [template_id, label],
    ).fetchone()
    if row is not None and row[0] == version_id:
        return False
    now = utcnow()
    db.execute(
        """
        INSERT INTO prompt_labels (template_id, label, version_id, moved_at, moved_by) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (template_id, label) DO UPDATE SET version_id = excluded.version_id,
            moved_at = excluded.moved_at, moved_by = excluded.moved_by
        """,
        [template_id, label, version_id, now, moved_by],
    )
    (to_version,) = db.execute("SELECT version FROM prompt_versions WHERE id = ?", [version_id]).fetchone()
    db.execute(
        """
        INSERT INTO prompt_label_moves (template_id, label, from_version, to_version, moved_at, moved_by)
        VALUES (?, ?, ?, ?, ?, ?)
        """,
        [template_id, label, None if row is None else row[1], to_version, now, moved_by],
    )
    return True


def label_moves(db: Database, template_id: int) -> list[LabelMove]:
    """Return every label move of a template, newest first."""
    rows = db.query(
        """
        SELECT label, from_version, to_version, moved_at, moved_by FROM prompt_label_moves
        WHERE template_id = ? ORDER BY id DESC
        """,
        [template_id],
    )
    return [LabelMove.model_validate(row) for row in rows]
