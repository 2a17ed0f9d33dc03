"""Launch tab: provider, base model, dataset version and hyperparameters, then "Check & estimate", then Launch.

The form is drawn from the base model's own hyperparameter schema, every field empty ("provider default")
until typed. Checking calls `jobs.plan_launch`, which changes nothing; Launch is enabled only while the plan
shown is for the form as it stands and refuses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.catalogue import Hyperparameter
from workbench.domain.jobs import BackendName
from workbench.errors import WorkbenchError
from workbench.services import job_views, jobs
from workbench.services.jobs import LaunchForm, LaunchPlan
from workbench.ui.permits import may
from workbench.ui.widgets import escape_markdown, field_help, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

PREFIX = "jobs.launch."
BACKEND, MODEL, MODEL_TEXT = PREFIX + "backend", PREFIX + "model", PREFIX + "model_text"
DATASET, VERSION, VALIDATION = PREFIX + "dataset", PREFIX + "version", PREFIX + "validation"
NAME, BUDGET, NOTE, HP = PREFIX + "name", PREFIX + "budget", PREFIX + "note", PREFIX + "hp."
PLAN, EXTRA_MODEL, SCOPE = PREFIX + "plan", PREFIX + "extra_model", "jobs.launch"
FROM_URL = "jobs.launch_from_url"
CURRENT = "current state (freeze at launch)"
VALIDATION_CHOICES = {
    "auto": "send it when the version has one",
    "validation": "send the validation split",
    "none": "send none",
}


def fill(form: LaunchForm) -> None:
    """Put a form's values (from Clone) into the widgets; call from a callback, before they are drawn."""
    for key in [k for k in st.session_state if str(k).startswith(PREFIX)]:
        del st.session_state[key]
    dataset, version = jobs.parse_dataset_ref(form.dataset)
    st.session_state[BACKEND] = form.backend.value
    st.session_state[MODEL if job_views.base_model_choices(form.backend) else MODEL_TEXT] = form.base_model
    st.session_state[EXTRA_MODEL] = form.base_model
    st.session_state[DATASET] = dataset
    st.session_state[VERSION] = version or CURRENT
    st.session_state[VALIDATION] = form.validation_split if form.validation_split in VALIDATION_CHOICES else "auto"
    for name, value in form.params.items():
        st.session_state[HP + name] = "" if value in ("None", "") else value


def render(store: Store, *, on_launched: Callable[[int], None]) -> None:
    """Draw the launch form, the plan once checked, and the Launch button."""
    show_flash(SCOPE)
    names = job_views.dataset_names(store)
    if not names:
        st.info("Import a dataset on the Datasets page first: a job trains on a dataset version.",
                icon=":material/dataset:")
        return
    _dataset_from_url(names)
    try:
        form = _form(store, names)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    if form is None:
        return
    kept = st.session_state.get(PLAN)
    fresh = kept is not None and kept["form"] == form
    st.button("Check & estimate", key=PREFIX + "check", icon=":material/fact_check:", on_click=_check,
              args=(store, form), type="secondary" if fresh else "primary",
              help="Validate the data against the base model's rules, price the job and preview the request; "
                   "nothing is frozen, uploaded or paid for.")
    if kept is not None and not fresh:
        st.caption("The form changed since the last check: check again before launching.")
    if fresh:
        _show(kept)
    if not may(Permission.JOBS_WRITE, "launch jobs"):
        return
    ready = fresh and kept["plan"] is not None and kept["plan"].ok and not kept["credentials"]
    st.button("Launch", key=PREFIX + "go", icon=":material/rocket_launch:", type="primary", disabled=not ready,
              on_click=_launch, args=(store, form, on_launched),
              help="Freeze the dataset (when no version is picked), export, check the file and submit the job.")


def _dataset_from_url(names: list[str]) -> None:
    """Open the form on the dataset a link names (`?tab=launch&dataset=NAME`, Home's retraining notice), once.

    Remembered outside PREFIX, which `fill` clears, so a later Clone is not overridden by the URL.
    """
    wanted = st.query_params.get("dataset")
    if wanted in names and st.session_state.get(FROM_URL) != wanted:
        st.session_state[DATASET] = wanted
        st.session_state[VERSION] = CURRENT
        st.session_state[FROM_URL] = wanted


def _form(store: Store, names: list[str]) -> LaunchForm | None:
    cols = st.columns(3)
    backend = BackendName(cols[0].selectbox("Provider", [b.value for b in BackendName], key=BACKEND))
    model = _base_model(cols[1], backend)
    if not model:
        st.caption("Give a base model to see its hyperparameters.")
        return None
    if st.session_state.get(DATASET) not in names:
        st.session_state[DATASET] = names[0]
    dataset = cols[2].selectbox("Dataset", names, key=DATASET)
    cols = st.columns(3)
    choices = [CURRENT, *job_views.version_names(store, dataset)]
    if st.session_state.get(VERSION) not in choices:
        st.session_state[VERSION] = CURRENT
    version = cols[0].selectbox("Version", choices, key=VERSION,
                                help="A frozen version trains on exactly what it froze; the current state is "
                                     "frozen into a new version at launch.")
    validation = cols[1].selectbox("Validation split", list(VALIDATION_CHOICES), key=VALIDATION,
                                   format_func=VALIDATION_CHOICES.get, help=field_help(LaunchForm, "validation_split"))
    name = cols[2].text_input("Job name", key=NAME, placeholder="automatic: dataset, model and time",
                              help="Letters, digits and '-' fit every provider.")
    schema = jobs.hyperparameter_schema(backend, jobs.target_for(backend, model), model)
    params = _hyperparameters(schema)
    cols = st.columns([1, 3])
    budget = cols[0].number_input("Budget (USD)", min_value=0.0, value=None, step=1.0, key=BUDGET,
                                  placeholder="no limit", help=field_help(LaunchForm, "budget_usd"))
    note = cols[1].text_input("Note", key=NOTE, placeholder="why this run (optional)")
    return LaunchForm(
        backend=backend, dataset=dataset if version == CURRENT else f"{dataset}@{version}", base_model=model,
        validation_split=None if validation == "auto" else validation, params=params, name=name.strip() or None,
        budget_usd=budget, note=note,
    )


def _base_model(col: Any, backend: BackendName) -> str:
    choices = job_views.base_model_choices(backend)
    if not choices:
        return col.text_input("Base model", key=MODEL_TEXT, help=job_views.FREE_TEXT_MODELS[backend],
                              placeholder="path or Hugging Face id").strip()
    extra = st.session_state.get(EXTRA_MODEL)
    if extra and extra not in choices:
        choices = [*choices, extra]  # a cloned job's model the catalogue does not list
    if st.session_state.get(MODEL) not in choices:
        st.session_state[MODEL] = choices[0]
    return col.selectbox("Base model", choices, key=MODEL, format_func=job_views.base_model_label)


def _hyperparameters(schema: tuple[Hyperparameter, ...]) -> dict[str, str]:
    st.markdown("**Hyperparameters** · empty means the provider's default")
    cols = st.columns(3)
    values = {}
    for i, spec in enumerate(schema):
        default = "" if spec.default is None else f" ({spec.default:g})" if isinstance(spec.default, float | int) \
            else f" ({spec.default})"
        if spec.choices:
            text = cols[i % 3].selectbox(
                spec.name, ["", *spec.choices], key=HP + spec.name, help=job_views.hyperparameter_help(spec),
                format_func=lambda v, d=default: v or f"provider default{d}",
            )
        else:
            text = cols[i % 3].text_input(spec.name, key=HP + spec.name, placeholder=f"provider default{default}",
                                          help=job_views.hyperparameter_help(spec))
        if text.strip():
            values[spec.name] = text.strip()
    return values


def _check(store: Store, form: LaunchForm) -> None:
    """Plan the launch and keep the plan with the form it was made for; build the backend for the preview."""
    credentials = None
    backend = None
    try:
        backend = jobs.default_backend(form.backend)
    except WorkbenchError as exc:  # MissingCredentials, a bad setting: shown, and Launch stays off
        credentials = str(exc)
    except ImportError as exc:
        credentials = f"the {form.backend.value} backend is not installed here ({exc}); install the `train` extra"
    try:
        plan: LaunchPlan | None = jobs.plan_launch(store, form, backend=backend)
        error = None
    except WorkbenchError as exc:
        plan, error = None, str(exc)
    st.session_state[PLAN] = {"form": form, "plan": plan, "credentials": credentials, "error": error}


def _launch(store: Store, form: LaunchForm, on_launched: Callable[[int], None]) -> None:
    job = run_action(SCOPE, jobs.launch, store, form,
                     success=lambda r: f"Launched {escape_markdown(r.name)} (job #{r.id}, {r.state.value}).")
    if job is not None:
        st.session_state.pop(PLAN, None)
        on_launched(job.id)


def _show(kept: dict[str, Any]) -> None:
    if kept["error"]:
        st.error(escape_markdown(kept["error"]), icon=":material/error:")
    if kept["credentials"]:
        st.error("Cannot launch: " + escape_markdown(kept["credentials"]), icon=":material/key_off:")
    plan: LaunchPlan | None = kept["plan"]
    if plan is None:
        return
    for refusal in plan.refusals:
        st.error("Refused: " + escape_markdown(refusal), icon=":material/block:")
    for warning in plan.warnings:
        st.warning(escape_markdown(warning), icon=":material/warning:")
    for advice in plan.advice:
        st.info(escape_markdown(advice), icon=":material/lightbulb:")
    if plan.ok:
        st.success(f"Ready to launch {escape_markdown(plan.job_name)}.", icon=":material/check_circle:")
    _summary(plan)
    if plan.findings:
        with st.expander(f"Validation findings ({len(plan.findings):,})", expanded=not plan.ok):
            st.dataframe(pd.DataFrame(plan.findings[:500]).astype(str), hide_index=True, width="stretch")
    with st.expander("Request preview", expanded=plan.ok):
        if plan.request:
            st.json(plan.request)
        else:
            st.caption("The preview needs the backend's settings; it shows once they are set.")
        st.caption("Every hyperparameter as the job will run it:")
        st.json(plan.effective)


def _summary(plan: LaunchPlan) -> None:
    cols = st.columns(4)
    cols[0].metric("Training estimate", job_views.money(plan.estimate.training_usd))
    cols[1].metric("Training records", f"{plan.train_records:,}")
    cols[2].metric("Validation records", f"{plan.validation_records:,}")
    cols[3].metric("Training tokens", f"{plan.estimate.train_tokens:,}",
                   help=f"x {plan.estimate.epochs} epochs" if plan.estimate.epochs else None)
    frozen = f"version {plan.version}" if plan.version else f"frozen at launch as {plan.freeze_as}"
    st.caption(escape_markdown(f"{plan.dataset}, {frozen}; trains on {plan.train_split or 'every example'}, "
                               f"validates on {plan.validation_split or 'nothing'}; target {plan.target}"))
    lines = pd.DataFrame([
        {"cost": line.label, "usd": job_views.money(line.usd), "detail": line.detail,
         "price checked": "yes" if line.verified else "no", "source": line.source or ""}
        for line in plan.estimate.lines
    ])
    if not lines.empty:
        st.dataframe(lines, hide_index=True, width="stretch")
    if plan.estimate.note:
        st.caption(escape_markdown(plan.estimate.note))
