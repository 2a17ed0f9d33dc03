"""The Browse tab's filters: widgets, and the URL they live in so a link reproduces the view.

The URL is the source of truth. A filter widget missing from session state (first load, a pasted
link, coming back from another tab whose run dropped the widget) is seeded from the URL; a change to
any filter writes the whole filter back to the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st
from pydantic import ValidationError

from workbench.domain.example import ReviewState, Split, ValidationStatus
from workbench.domain.filters import ExampleFilter
from workbench.services.datasets import Facets
from workbench.ui.widgets import escape_markdown, field_help

ANY = "any"
PII_CHOICES = {ANY: None, "with PII": True, "without PII": False}
FULL_RATING = (1, 5)

# Widget keys, in the order the widgets are drawn.
SEARCH, SPLIT, TAGS, REVIEW = "datasets.search", "datasets.split", "datasets.tags", "datasets.review"
RATING, UNRATED, PII, CHECKS = "datasets.rating_range", "datasets.unrated", "datasets.pii", "datasets.checks"
MIN_TOKENS, MAX_TOKENS = "datasets.min_tokens", "datasets.max_tokens"
META_FIELD, META_VALUE = "datasets.meta_field", "datasets.meta_value"
KEYS = (SEARCH, SPLIT, TAGS, REVIEW, RATING, UNRATED, PII, CHECKS, MIN_TOKENS, MAX_TOKENS, META_FIELD, META_VALUE)

# Query parameters, short so a shared link stays readable.
URL_PARAMS = ("q", "split", "tags", "review", "rating", "unrated", "pii", "checks", "min_tokens", "max_tokens", "field", "value")
PAGE, PAGER = "datasets.page", "datasets.pager"
PAGE_PARAM = "page"
TAB = "datasets.tab"
# The filters under "More filters", each with the widgets that clear it; shown as chips when set.
MORE = {
    "rating": (RATING,),
    "unrated": (UNRATED,),
    "pii": (PII,),
    "checks": (CHECKS,),
    "tokens": (MIN_TOKENS, MAX_TOKENS),
    "metadata": (META_FIELD, META_VALUE),
}


# ------------------------------------------------------------------------------- pure conversions


def filter_from_query(params: Mapping[str, Any]) -> ExampleFilter:
    """Read a filter from query parameters, ignoring any value that does not make sense."""
    fields: dict[str, Any] = {
        "search": _one(params, "q"),
        "split": _enum(Split, _one(params, "split")),
        "tags": [t for t in _all(params, "tags") if t.strip()],
        "review_state": _enum(ReviewState, _one(params, "review")),
        "unrated": _one(params, "unrated") in ("1", "true", "yes"),
        "has_pii": {"yes": True, "no": False}.get(_one(params, "pii")),
        "validation_status": _enum(ValidationStatus, _one(params, "checks")),
        "min_tokens": _int(_one(params, "min_tokens")),
        "max_tokens": _int(_one(params, "max_tokens")),
        "metadata_field": _one(params, "field"),
        "metadata_value": _one(params, "value"),
    }
    low, _, high = _one(params, "rating").partition("-")
    fields["min_rating"], fields["max_rating"] = _int(low), _int(high or low)
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            ExampleFilter(**{name: value})
        except ValidationError:
            continue
        clean[name] = value
    return ExampleFilter(**clean)


def filter_to_query(flt: ExampleFilter) -> dict[str, str | list[str]]:
    """Write a filter as query parameters, leaving out everything at its default."""
    out: dict[str, str | list[str]] = {}
    if flt.search.strip():
        out["q"] = flt.search.strip()
    if flt.split is not None:
        out["split"] = flt.split.value
    if flt.tags:
        out["tags"] = list(flt.tags)
    if flt.review_state is not None:
        out["review"] = flt.review_state.value
    if flt.min_rating is not None or flt.max_rating is not None:
        out["rating"] = f"{flt.min_rating or 1}-{flt.max_rating or 5}"
    if flt.unrated:
        out["unrated"] = "1"
    if flt.has_pii is not None:
        out["pii"] = "yes" if flt.has_pii else "no"
    if flt.validation_status is not None:
        out["checks"] = flt.validation_status.value
    if flt.min_tokens is not None:
        out["min_tokens"] = str(flt.min_tokens)
    if flt.max_tokens is not None:
        out["max_tokens"] = str(flt.max_tokens)
    if flt.metadata_field and flt.metadata_value:
        out["field"], out["value"] = flt.metadata_field, flt.metadata_value
    return out


def widget_values(flt: ExampleFilter) -> dict[str, Any]:
    """Return the value each filter widget shows for a filter."""
    pii = next(label for label, value in PII_CHOICES.items() if value == flt.has_pii)
    return {
        SEARCH: flt.search,
        SPLIT: flt.split.value if flt.split else ANY,
        TAGS: list(flt.tags),
        REVIEW: flt.review_state.value if flt.review_state else ANY,
        RATING: (flt.min_rating or 1, flt.max_rating or 5),
        UNRATED: flt.unrated,
        PII: pii,
        CHECKS: flt.validation_status.value if flt.validation_status else ANY,
        MIN_TOKENS: flt.min_tokens,
        MAX_TOKENS: flt.max_tokens,
        META_FIELD: flt.metadata_field,
        META_VALUE: flt.metadata_value,
    }


def filter_from_widgets(state: Mapping[str, Any]) -> ExampleFilter:
    """Build the filter the widgets currently show."""
    rating = tuple(state.get(RATING) or FULL_RATING)
    field, value = state.get(META_FIELD) or "", (state.get(META_VALUE) or "").strip()
    return ExampleFilter(
        search=(state.get(SEARCH) or "").strip(),
        split=_enum(Split, state.get(SPLIT)),
        tags=list(state.get(TAGS) or []),
        review_state=_enum(ReviewState, state.get(REVIEW)),
        min_rating=None if rating == FULL_RATING else rating[0],
        max_rating=None if rating == FULL_RATING else rating[1],
        unrated=bool(state.get(UNRATED)),
        has_pii=PII_CHOICES.get(state.get(PII) or ANY),
        validation_status=_enum(ValidationStatus, state.get(CHECKS)),
        min_tokens=state.get(MIN_TOKENS),
        max_tokens=state.get(MAX_TOKENS),
        metadata_field=field if field and value else "",
        metadata_value=value if field and value else "",
    )


def more_filter_chips(flt: ExampleFilter) -> list[tuple[str, str]]:
    """Return (name in MORE, label) for each filter under "More filters" that is set, in drawing order."""
    chips: list[tuple[str, str]] = []
    if flt.min_rating is not None or flt.max_rating is not None:
        low, high = flt.min_rating or 1, flt.max_rating or 5
        chips.append(("rating", f"rating {low}" if low == high else f"rating {low}-{high}"))
    if flt.unrated:
        chips.append(("unrated", "only unrated"))
    if flt.has_pii is not None:
        chips.append(("pii", "with PII" if flt.has_pii else "without PII"))
    if flt.validation_status is not None:
        chips.append(("checks", f"checks: {flt.validation_status.value}"))
    if flt.min_tokens is not None or flt.max_tokens is not None:
        if flt.min_tokens is not None and flt.max_tokens is not None:
            chips.append(("tokens", f"{flt.min_tokens:,}-{flt.max_tokens:,} tokens"))
        elif flt.min_tokens is not None:
            chips.append(("tokens", f"at least {flt.min_tokens:,} tokens"))
        else:
            chips.append(("tokens", f"at most {flt.max_tokens:,} tokens"))
    if flt.metadata_field and flt.metadata_value:
        chips.append(("metadata", f"{flt.metadata_field} = {flt.metadata_value}"))
    return chips


def page_from_query(params: Mapping[str, Any]) -> int:
    """Read the listing page from query parameters: a whole number from 1, else 1."""
    page = _int(_one(params, PAGE_PARAM))
    return page if page and page > 0 else 1


def _one(params: Mapping[str, Any], key: str) -> str:
    values = _all(params, key)
    return values[-1] if values else ""


def _all(params: Mapping[str, Any], key: str) -> list[str]:
    get_all = getattr(params, "get_all", None)
    if get_all is not None:
        return [str(v) for v in get_all(key)]
    value = params.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _enum(kind: Any, value: Any) -> Any:
    try:
        return kind(value) if value not in (None, "", ANY) else None
    except ValueError:
        return None


def _int(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


# ------------------------------------------------------------------------------------- Streamlit


def current_filter() -> ExampleFilter:
    """Return the filter the Browse widgets show (callbacks use it to act on the current selection)."""
    return filter_from_widgets(st.session_state)


def write_url(flt: ExampleFilter) -> None:
    """Put a filter into the URL, replacing whatever filter was there."""
    wanted = filter_to_query(flt)
    for name in URL_PARAMS:
        if name in wanted:
            if st.query_params.get_all(name) != _all(wanted, name):
                st.query_params[name] = wanted[name]
        elif name in st.query_params:
            del st.query_params[name]


def clear_filters() -> None:
    """Reset every filter (a callback, so the widgets have not been drawn yet)."""
    for key, value in widget_values(ExampleFilter()).items():
        st.session_state[key] = value
    _changed()


def show_in_browse(flt: ExampleFilter) -> None:
    """Switch to the Browse tab with `flt` applied (a callback, for 'show these examples' buttons)."""
    for key, value in widget_values(flt).items():
        st.session_state[key] = value
    _changed()
    st.session_state[TAB] = "Browse"
    st.query_params["tab"] = "Browse"


def _changed() -> None:
    write_url(current_filter())
    set_page(1)


def set_page(page: int, *, from_pager: bool = False) -> None:
    """Show listing page `page` and put it in the URL (page 1 is the default and left out).

    Unless the pager itself asked, its state is dropped so it is drawn again on the new page.
    """
    st.session_state[PAGE] = page
    if not from_pager:
        st.session_state.pop(PAGER, None)
    if page > 1:
        st.query_params[PAGE_PARAM] = str(page)
    else:
        st.query_params.pop(PAGE_PARAM, None)


def _clear_chip(name: str) -> None:
    defaults = widget_values(ExampleFilter())
    for key in MORE[name]:
        st.session_state[key] = defaults[key]
    _changed()


def _seed(facets: Facets) -> None:
    if PAGE not in st.session_state:
        st.session_state[PAGE] = page_from_query(st.query_params)
    if all(key in st.session_state for key in KEYS):
        return
    from_url = widget_values(filter_from_query(st.query_params))
    # Options can change under a link (a tag removed since it was shared); keep what still exists.
    from_url[TAGS] = [t for t in from_url[TAGS] if t in facets.tags]
    if from_url[META_FIELD] not in facets.metadata_keys:
        from_url[META_FIELD], from_url[META_VALUE] = "", ""
    for key in KEYS:
        st.session_state.setdefault(key, from_url[key])


def filter_widgets(facets: Facets) -> ExampleFilter:
    """Draw the filters, seeded from the URL, and return the filter they describe."""
    _seed(facets)
    first = st.columns([3, 1.2, 1.2, 2], vertical_alignment="bottom")
    first[0].text_input(
        "Search", key=SEARCH, on_change=_changed, placeholder="Words to find in any turn",
        help=field_help(ExampleFilter, "search"),
    )
    first[1].selectbox("Split", [ANY, *(s.value for s in Split)], key=SPLIT, on_change=_changed)
    first[2].selectbox("Review", [ANY, *(s.value for s in ReviewState)], key=REVIEW, on_change=_changed)
    first[3].multiselect(
        "Tags", list(facets.tags), key=TAGS, on_change=_changed, format_func=lambda t: f"{t} ({facets.tags.get(t, 0)})",
        help=field_help(ExampleFilter, "tags"), placeholder="Any tags",
    )
    chips = more_filter_chips(current_filter())
    more = "More filters" + (f" · {len(chips)} active" if chips else "")
    with st.expander(more, icon=":material/tune:", key="datasets.more_filters"):
        cols = st.columns(4)
        cols[0].slider("Rating", 1, 5, key=RATING, on_change=_changed, help="Both ends included; 1-5 means any rating.")
        cols[0].checkbox("Only unrated", key=UNRATED, on_change=_changed, help=field_help(ExampleFilter, "unrated"))
        cols[1].selectbox("PII", list(PII_CHOICES), key=PII, on_change=_changed, help="Personal data found at import.")
        cols[1].selectbox(
            "Format checks", [ANY, *(s.value for s in ValidationStatus)], key=CHECKS, on_change=_changed,
            help="Outcome of the checks run at import; target-specific checks are on the Validate tab.",
        )
        cols[2].number_input("Min tokens", min_value=0, step=50, key=MIN_TOKENS, on_change=_changed)
        cols[2].number_input("Max tokens", min_value=0, step=50, key=MAX_TOKENS, on_change=_changed)
        cols[3].selectbox(
            "Metadata field", ["", *facets.metadata_keys], key=META_FIELD, on_change=_changed,
            format_func=lambda k: k or "(none)", help=field_help(ExampleFilter, "metadata_field"),
        )
        cols[3].text_input("Value", key=META_VALUE, on_change=_changed, help=field_help(ExampleFilter, "metadata_value"))
    if chips:
        # What the folded filters hold stays in sight, each with its own way out.
        row = st.container(horizontal=True, vertical_alignment="center")
        row.caption("Also filtering by", width="content")
        for name, label in chips:
            row.button(escape_markdown(label), icon=":material/close:", key=f"datasets.chip_{name}", on_click=_clear_chip, args=(name,),
                       help="Clear this filter", type="tertiary")
    return current_filter()
