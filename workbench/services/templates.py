"""The template library: create versions, move labels, render on given variables or a dataset example, diff.

Versions are immutable and numbered per template; a new version whose content equals the newest one's
is not made (the newest is returned instead). The service keeps the `latest` label on the newest
version; `production`, `staging` and custom labels move only when asked, and every move is recorded.
"""

from __future__ import annotations

import getpass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from workbench.domain import templates as tpl
from workbench.domain.access import Permission
from workbench.domain.templates import (
    LabelMove,
    RenderedPrompt,
    Template,
    TemplateDiff,
    TemplateVersion,
    VersionContent,
)
from workbench.errors import InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import templates as rows


def current_user() -> str | None:
    """Return who to record as a version's author or a label's mover: the acting person's email.

    The single local user of a workbench without sign-in is recorded by their OS login, as before there were
    sign-ins; None where it cannot be told.
    """
    actor = access.current()
    if actor.via != "local":
        return actor.email
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):
        return None


class TemplateSummary(BaseModel):
    """A template as a list shows it."""

    template: Template
    versions: int
    latest: int | None = Field(description="The newest version's number.")
    labels: dict[str, int] = Field(description="Each label and the version it points at.")
    model: str | None = Field(None, description="The newest version's model.")


class TemplateDetail(BaseModel):
    """A template with every version, its labels and the history of label moves."""

    template: Template
    versions: list[TemplateVersion]
    labels: dict[str, int]
    moves: list[LabelMove] = Field(description="Label moves, newest first.")


class CreatedVersion(BaseModel):
    version: TemplateVersion
    created: bool = Field(description="False when the content equalled the newest version's, so none was made.")
    new_template: bool = False


# ------------------------------------------------------------------------------------------ reading


def list_templates(store: Store) -> list[TemplateSummary]:
    """Return every template with its version count, newest version and labels."""
    access.require(store, Permission.TEMPLATES_READ, action="template.list")
    with store.connect() as db:
        out: list[TemplateSummary] = []
        for template in rows.list_templates(db):
            newest = rows.newest_version(db, template.id)
            out.append(TemplateSummary(
                template=template, versions=len(rows.version_numbers(db, template.id)),
                latest=newest.version if newest else None, labels=rows.labels(db, template.id),
                model=newest.settings.model if newest else None,
            ))
        return out


def template_detail(store: Store, name: str) -> TemplateDetail:
    """Return a template with its versions, labels and label history."""
    access.require(store, Permission.TEMPLATES_READ, action="template.show", target=f"template:{name}")
    with store.connect() as db:
        template = _template(db, tpl.check_name(name))
        return TemplateDetail(
            template=template, versions=rows.versions(db, template.id), labels=rows.labels(db, template.id),
            moves=rows.label_moves(db, template.id),
        )


def resolve(store: Store, ref: str) -> TemplateVersion:
    """Return the version `NAME`, `NAME@3` or `NAME@production` names; plain `NAME` is its latest version."""
    name, selector = tpl.parse_ref(ref)
    with store.connect() as db:
        return _resolve(db, _template(db, name), selector)


def get_version(store: Store, version_id: int) -> TemplateVersion:
    """Return a version by its row id, the id comparisons and evaluations keep."""
    with store.connect() as db:
        version = rows.get_version_by_id(db, version_id)
    if version is None:
        raise NotFound(f"no template version with id {version_id}")
    return version


def _template(db: Any, name: str) -> Template:
    template = rows.find_template(db, name)
    if template is None:
        names = rows.template_names(db)
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        raise NotFound(f"no template named {name!r}; templates: {listed or 'none yet (workbench templates create)'}")
    return template


def _resolve(db: Any, template: Template, selector: int | str | None) -> TemplateVersion:
    if selector is None:
        selector = tpl.LATEST
    if isinstance(selector, int):
        version = rows.get_version(db, template.id, selector)
        if version is None:
            numbers = rows.version_numbers(db, template.id)
            have = f"1 to {numbers[-1]}" if numbers else "none"
            raise NotFound(f"template {template.name!r} has no version {selector}; versions: {have}")
        return version
    labels = rows.labels(db, template.id)
    if selector not in labels:
        listed = ", ".join(f"{label} -> {number}" for label, number in labels.items()) or "none"
        raise NotFound(f"template {template.name!r} has no label {selector!r}; labels: {listed}")
    version = rows.get_version(db, template.id, labels[selector])
    assert version is not None  # a label points at a version row (foreign key)
    return version


# ------------------------------------------------------------------------------------------ writing


def create_version(
    store: Store,
    name: str,
    *,
    user_template: str | None = None,
    system_template: str | None = None,
    task_type: str | None = None,
    description: str | None = None,
    settings: dict[str, Any] | None = None,
    few_shot: list[tpl.FewShot] | None = None,
    cot_instruction: str | None = None,
    commit_message: str = "",
    created_by: str | None = None,
) -> CreatedVersion:
    """Add a version to a template, creating the template when the name is new.

    What is not given is carried over from the newest version (a new template needs a user template),
    so changing only the user template keeps the system prompt, few-shot pairs and model settings.
    Settings are merged field by field; an empty chain-of-thought instruction removes it.
    """
    access.require(store, Permission.TEMPLATES_WRITE, action="template.version", target=f"template:{name}")
    name = tpl.check_name(name)
    task = tpl.check_task(task_type) if task_type is not None else None
    with store.connect() as db:
        existing = rows.find_template(db, name)
        newest = rows.newest_version(db, existing.id) if existing else None
    content = _content(newest, user_template, system_template, settings, few_shot, cot_instruction)
    variables = tpl.check_content(content)  # parse and refuse before taking the write lock
    with store.write() as db:
        template = rows.find_template(db, name)
        new_template = template is None
        if template is None:
            template = rows.create_template(db, name, description=description or "", task_type=task or tpl.DEFAULT_TASK)
        else:
            rows.update_template(db, template.id, description=description, task_type=task)
        newest = rows.newest_version(db, template.id)
        if newest is not None and newest.content_hash == content.digest():
            return CreatedVersion(version=newest, created=False)
        number = (newest.version if newest else 0) + 1
        version_id = rows.insert_version(
            db, template.id, number, content, variables=variables, commit_message=commit_message.strip(),
            created_by=created_by,
        )
        rows.move_label(db, template.id, tpl.LATEST, version_id, created_by)
        access.audit(db, "template.create" if new_template else "template.version", f"template:{name}",
                     version=number, message=commit_message.strip()[:200])
        version = rows.get_version_by_id(db, version_id)
    assert version is not None
    return CreatedVersion(version=version, created=True, new_template=new_template)


def _content(
    newest: TemplateVersion | None, user_template: str | None, system_template: str | None,
    settings: dict[str, Any] | None, few_shot: list[tpl.FewShot] | None, cot_instruction: str | None,
) -> VersionContent:
    if newest is None and (user_template is None or not user_template.strip()):
        raise InvalidInput("a new template needs a user template (the text of the user turn, e.g. '{{ input }}')")
    if user_template is not None and not user_template.strip():
        raise InvalidInput("the user template is empty: the model would be sent an empty turn")
    base = newest.settings.model_dump() if newest else {}
    merged = tpl.model_settings(**{**base, **(settings or {})})
    cot = (cot_instruction.strip() or None) if cot_instruction is not None else (newest.cot_instruction if newest else None)
    try:
        return VersionContent(
            system_template=system_template if system_template is not None else (newest.system_template if newest else ""),
            user_template=user_template if user_template is not None else newest.user_template,  # type: ignore[union-attr]
            few_shot=few_shot if few_shot is not None else (newest.few_shot if newest else []),
            cot_instruction=cot, settings=merged,
        )
    except ValidationError as exc:  # a template over the size limit, too many few-shot pairs
        first = exc.errors()[0]
        raise InvalidInput(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def set_label(store: Store, name: str, version: int, label: str, *, moved_by: str | None = None) -> LabelMove | None:
    """Point a label (production, staging or a custom one) at a version; None when it already pointed there."""
    access.require(store, Permission.TEMPLATES_WRITE, action="template.label", target=f"template:{name}")
    label = tpl.check_label(label)
    with store.write() as db:
        template = _template(db, tpl.check_name(name))
        target = _resolve(db, template, version)
        before = rows.labels(db, template.id).get(label)
        if not rows.move_label(db, template.id, label, target.id, moved_by):
            return None
        access.audit(db, "template.label", f"template:{template.name}", label=label, version=target.version,
                     was=before)
        return rows.label_moves(db, template.id)[0]


# ------------------------------------------------------------------------------------------ rendering


def example_variables(store: Store, example_id: int, dataset: str | None = None) -> dict[str, Any]:
    """Return the variables a dataset example offers (see `domain.templates.example_variables`)."""
    return tpl.example_variables(_example(store, example_id, dataset))


def few_shot_from_examples(store: Store, example_ids: list[int], dataset: str | None = None) -> list[tpl.FewShot]:
    """Copy examples' last user and assistant turns as few-shot pairs (their text, not a link to them)."""
    pairs: list[tpl.FewShot] = []
    for example_id in example_ids:
        example = _example(store, example_id, dataset)
        with store.connect() as db:
            owner = dataset_rows.get_dataset(db, int(example.dataset_id or 0)).name if example.dataset_id else None
        pairs.append(tpl.few_shot_of(example, f"{owner} example {example_id}" if owner else f"example {example_id}"))
    return pairs


def _example(store: Store, example_id: int, dataset: str | None) -> Any:
    with store.connect() as db:
        example = example_rows.get_example(db, example_id)
        if dataset is not None and example.dataset_id != dataset_rows.dataset_id(db, dataset):
            raise NotFound(f"example {example_id} is not in dataset {dataset!r}")
    return example


def render(
    store: Store,
    ref: str,
    variables: dict[str, Any] | None = None,
    *,
    dataset: str | None = None,
    example_id: int | None = None,
    expected_output_tokens: int | None = None,
) -> RenderedPrompt:
    """Render a version exactly as the model would be sent it, with token counts and a cost per priced model.

    Variables come from a dataset example when one is named, then from `variables`, which win.
    """
    version = resolve(store, ref)
    given = _variables(store, variables, dataset, example_id)
    return tpl.render_prompt(version, given, expected_output_tokens=expected_output_tokens)


def diff(
    store: Store,
    name: str,
    a: int | str,
    b: int | str,
    variables: dict[str, Any] | None = None,
    *,
    dataset: str | None = None,
    example_id: int | None = None,
) -> TemplateDiff:
    """Render two versions (numbers or labels) of a template on the same input and diff them part by part."""
    versions = [resolve(store, f"{name}@{selector}") for selector in (a, b)]
    given = _variables(store, variables, dataset, example_id)
    return tpl.diff_renderings(*(tpl.render_prompt(version, given) for version in versions))


def _variables(store: Store, variables: dict[str, Any] | None, dataset: str | None, example_id: int | None) -> dict[str, Any]:
    if example_id is None and dataset is not None:
        raise InvalidInput("--dataset names where the example is: give the example too (--example ID)")
    given = example_variables(store, example_id, dataset) if example_id is not None else {}
    return {**given, **(variables or {})}


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """Turn `key=value` strings into variables; the value is everything after the first '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--var {pair!r}: write it as key=value")
        out[tpl.check_variable(key.strip(), "--var")] = value
    return out


# ------------------------------------------------------------------------------------------ starters


def install_starters(store: Store, *, created_by: str | None = None) -> list[str]:
    """Add the starter templates the workbench ships; a name already taken is left alone. Return those added."""
    from workbench.domain.starter_templates import STARTERS

    access.require(store, Permission.TEMPLATES_WRITE, action="template.install_starters")
    with store.connect() as db:
        taken = set(rows.template_names(db))
    added: list[str] = []
    for starter in STARTERS:
        if starter.name in taken:
            continue
        create_version(
            store, starter.name, user_template=starter.user, system_template=starter.system, task_type=starter.task,
            description=starter.description, settings=starter.settings, cot_instruction=starter.cot,
            few_shot=list(starter.few_shot), commit_message="Starter template shipped with the workbench",
            created_by=created_by,
        )
        if starter.production:
            set_label(store, starter.name, 1, "production", moved_by=created_by)
        added.append(starter.name)
    return added
