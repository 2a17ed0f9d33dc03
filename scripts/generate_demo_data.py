#!/usr/bin/env python3
"""Generate the three demo datasets shipped under ``data/demo/``.

    python scripts/generate_demo_data.py [--out data/demo] [--seed N]

Standard library only, no network, no model calls. Output is deterministic: the same seed gives
byte-identical files on every run (``random.Random(seed)``, no set/hash ordering, fixed JSON layout).

Files (one JSON object per line):

* ``optimization_modeling.jsonl``: Bedrock Claude 3 Haiku format
  (``{"system": str, "messages": [{"role", "content": str}, ...]}``). Business optimisation problems
  (product mix, staff scheduling, diet/feed/alloy blending, transportation, facility location, capital
  budgeting and knapsack, portfolio, vehicle routing, lot-sizing, assignment) and step-by-step
  formulations. About 5% are multi-turn (a follow-up adds a constraint, the assistant revises).
* ``geo_compliance.jsonl``: Alpaca format (``instruction``/``input``/``output`` plus an optional
  ``metadata`` object). Feature artifacts full of internal jargon; the output is a JSON verdict string
  (``needs_geo_compliance`` true / false / "uncertain", ``regulations``, ``regions``, ``reasoning``).
* ``stylist_feedback.jsonl``: Bedrock Nova format (``schemaVersion`` "bedrock-conversation-2024",
  ``system`` list, ``messages`` with ``content`` lists). Client feedback about a salon visit; the answer
  is a JSON string (``headline``, ``pinch_points``, ``sentiment``).

Deliberate defects, so that the cleaning tools have something to find. They are recorded only here and
in the summary this script prints, never as a field in the data. Per file (roughly, on ~250 lines):

* PII: about 6 emails, 4 US phone numbers ("(415) 555-0134" and "+1 212 555 0199" styles), 2 Luhn-valid
  test card numbers (4111 1111 1111 1111), 2 SSN-shaped numbers (123-45-6789), 2 IP addresses, 1 AWS
  access key id (AKIAIOSFODNN7EXAMPLE) and 1 OpenAI-looking "sk-..." key.
* 8 near-duplicates of other lines (whitespace, letter case, punctuation, or one word changed) and 3
  exact duplicate lines.
* Guardrail bait: "damn" (3 in user text, 1 in an assistant answer), competitor names (3: ChatGPT/Gemini,
  Snapchat/Instagram/YouTube, Supercuts/Drybar/Great Clips), "guaranteed returns" wording (2), and assistant
  answers that contain "As an AI language model" (3 in the Claude file, 2 in the others).
* Format-specific: one Claude example whose ``system`` is the empty string; two Nova examples whose
  user text contains reserved tokens ("User:", "Assistant:"), which fail a Nova fine-tuning job.

The script prints these counts per file. About 5% of the Claude examples are multi-turn on purpose (not a defect).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20250917
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "data" / "demo"

OPT_FILE = "optimization_modeling.jsonl"
GEO_FILE = "geo_compliance.jsonl"
STYLIST_FILE = "stylist_feedback.jsonl"

Record = dict[str, Any]


# ---------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------


def num(v: float) -> str:
    """A number for formulas: no thousands separators, no trailing zeros."""
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.4f}".rstrip("0").rstrip(".")


def money(v: float) -> str:
    if float(v).is_integer():
        return f"${int(v):,}"
    return f"${v:,.2f}"


def nice(v: float, step: int) -> int:
    return max(step, int(round(v / step)) * step)


def join_and(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def lin(terms: list[tuple[float, str]]) -> str:
    """Render a linear expression such as ``4 x1 + 2 x2 - x3``."""
    out: list[str] = []
    for c, v in terms:
        if c == 0:
            continue
        t = v if abs(c) == 1 else f"{num(abs(c))} {v}"
        if not out:
            out.append(("-" if c < 0 else "") + t)
        else:
            out.append(("- " if c < 0 else "+ ") + t)
    return " ".join(out) if out else "0"


def slug(text: str, first: bool = False) -> str:
    words = text.lower().split()
    word = re.sub(r"[^a-z0-9]", "", words[0] if first else words[-1])
    return word or "v"


def var_names(rng: random.Random, labels: list[str], letter: str = "x") -> list[str]:
    """Either indexed names (x1, x2, ...) or descriptive ones (x_tables; x_grape, x_apple when last words clash)."""
    if rng.random() < 0.5:
        return [f"{letter}{i + 1}" for i in range(len(labels))]
    bases = [slug(lab) for lab in labels]
    if len(set(bases)) < len(bases):
        bases = [slug(lab, first=True) for lab in labels]
    names: list[str] = []
    for b in bases:
        name = f"{letter}_{b}"
        k = 2
        while name in names:
            name = f"{letter}_{b}{k}"
            k += 1
        names.append(name)
    return names


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def qty(v: float, unit: str, label: str) -> str:
    """'3 hours of oven time', '1 hour of ...', '2 circuit boards', '1 circuit board'."""
    one = float(v) == 1
    if label.endswith(unit):
        return f"{num(v)} {label[:-1] if one and label.endswith('s') else label}"
    u = unit[:-1] if one and unit.endswith("s") else unit
    return f"{num(v)} {u} of {label}"


def norm_key(text: str) -> str:
    """Lower case, punctuation and whitespace removed: equal keys mean near-identical texts."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def unique_records(rng: random.Random, count: int, make: Callable[[random.Random], Record], fmt: str) -> list[Record]:
    """Generate ``count`` records whose user texts differ after normalisation (no accidental duplicates)."""
    seen: set[str] = set()
    out: list[Record] = []
    while len(out) < count:
        rec = make(rng)
        key = norm_key(user_text(rec, fmt))
        if key in seen:
            continue
        seen.add(key)
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------------
# Dataset 1: optimisation modelling (Claude 3 Haiku format)
# ---------------------------------------------------------------------------------------------------

OPT_SYSTEMS = [
    "You are an operations research consultant. Turn business problems into precise mathematical "
    "optimization models: define decision variables, the objective, and every constraint in plain-text "
    "math, name the problem class (LP, MILP, QP), and add a short note on how to solve it.",
    "You help analysts formulate optimization models. Reason step by step from the business description "
    "to decision variables, objective function and constraints, then classify the model and suggest a solver.",
    "You are a patient OR tutor for business teams. Explain the modelling choices briefly, then give the "
    "complete formulation (variables, objective, constraints) and say whether it is an LP, MILP or QP.",
]

GENERIC_COMPANIES = [
    "Northwind Foods", "Brightline Apparel", "Cobalt Metals", "Sunvale Dairy", "Keystone Plastics",
    "Altamira Chemicals", "BlueRiver Logistics", "Meridian Health", "Tidewater Seafood", "Lumen Electronics",
    "Fieldstone Farms", "Vantage Pharma", "Granite Peak Outfitters", "Maple & Main Grocers", "Atlas Home Goods",
    "Evergreen Paper", "Summit Bikes", "Riverbend Hospital", "Cascade Support Services", "Ironclad Tools",
    "Pacific Crest Beverages", "Harvest Moon Organics", "Orchid Bay Hotels", "Silverline Textiles",
    "Redwood Building Supply", "Polaris Medical Devices", "Westgate Retail", "Anchor Point Marine",
]

FOOD_COS = ["Northwind Foods", "Sunvale Dairy", "Tidewater Seafood", "Fieldstone Farms", "Harvest Moon Organics",
            "Maple & Main Grocers", "Pacific Crest Beverages"]
INDUSTRIAL_COS = ["Cobalt Metals", "Keystone Plastics", "Altamira Chemicals", "Ironclad Tools", "Anchor Point Marine",
                  "Evergreen Paper", "Polaris Medical Devices", "Redwood Building Supply"]
DISTRIBUTION_COS = ["BlueRiver Logistics", "Westgate Retail", "Atlas Home Goods", "Maple & Main Grocers",
                    "Granite Peak Outfitters", "Summit Bikes", "Northwind Foods", "Evergreen Paper"]

CITIES = [
    "Reno", "Fresno", "Boise", "Tulsa", "Omaha", "Dayton", "Spokane", "Tucson", "Savannah", "Madison",
    "Lubbock", "Akron", "Knoxville", "Wichita", "Modesto", "Toledo", "Durham", "Laredo", "Provo", "Eugene",
    "Albany", "Macon", "Peoria", "Joliet", "Duluth", "Billings", "Fargo", "Mobile", "Tacoma", "Yakima",
]

ASKS = [
    "Can you formulate this as an optimization model?",
    "How would you set this up as a mathematical model?",
    "Please write out the decision variables, objective and constraints.",
    "I need a model I can hand to our analyst to solve. What would it look like?",
    "What's the right optimization model here?",
    "Could you walk me through building the model for this?",
    "Help me turn this into an LP/MILP I can put into a solver.",
    "How should we model this so a solver can find the best plan?",
]

INTROS = [
    "Let's build the model step by step.",
    "Here's how I would formulate this.",
    "Good candidate for an optimization model. Working through it:",
    "Let me translate the description into math one piece at a time.",
    "We can write this as a mathematical program.",
    "Let's reason from the business question to the model.",
]

SECTION_NAMES = {
    "vars": ["Decision variables", "Variables", "What we decide"],
    "obj": ["Objective", "Objective function", "Goal"],
    "cons": ["Constraints", "Constraints", "Restrictions"],
    "type": ["Problem type", "Model class", "Type of problem"],
    "solve": ["Solving it", "How to solve", "Solution note"],
}

HEADINGS: list[Callable[[int, str], str]] = [
    lambda i, t: f"**{i}. {t}**",
    lambda i, t: f"Step {i}: {t}",
    lambda i, t: f"### {i}) {t}",
    lambda i, t: f"{t.upper()}",
]


class Opt:
    """One generated optimisation problem: the user text plus the pieces of its formulation."""

    def __init__(self, user: str, reasoning: str, variables: list[str], objective: str,
                 constraints: list[str], ptype: str, solve: str,
                 followup: Callable[[random.Random], tuple[str, str]] | None = None) -> None:
        self.user = user
        self.reasoning = reasoning
        self.variables = variables
        self.objective = objective
        self.constraints = constraints
        self.ptype = ptype
        self.solve = solve
        self.followup = followup


def render_opt(rng: random.Random, p: Opt) -> tuple[str, Callable[[str], str]]:
    heading = rng.choice(HEADINGS)
    unicode_rel = rng.random() < 0.3

    def rel(text: str) -> str:
        if unicode_rel:
            return text.replace(" <= ", " ≤ ").replace(" >= ", " ≥ ")
        return text

    sections = [
        ("vars", bullets(p.variables)),
        ("obj", p.objective),
        ("cons", bullets(p.constraints)),
        ("type", p.ptype),
        ("solve", p.solve),
    ]
    parts = [rng.choice(INTROS) + " " + p.reasoning]
    for i, (key, body) in enumerate(sections):
        parts.append(heading(i + 1, rng.choice(SECTION_NAMES[key])) + "\n" + body)
    return rel("\n\n".join(parts)), rel


# --- product mix --------------------------------------------------------------------------------------

PROD_INDUSTRIES: list[dict[str, Any]] = [
    {
        "what": "furniture workshop", "companies": ["Harbor & Pine Furniture", "Oakline Woodworks", "Birchwood Studio"],
        "unit": "unit", "unit_pl": "units", "period": "week", "integer": True, "profit": (35, 190),
        "products": ["dining tables", "chairs", "bookcases", "desks", "TV stands", "bed frames"],
        "resources": [("carpentry hours", "h", 1, 7, 1), ("finishing hours", "h", 0.5, 3, 1),
                      ("lumber", "board-feet", 6, 45, 0)],
    },
    {
        "what": "wholesale bakery", "companies": ["Redwood Bakery Co.", "Golden Crust Bakers", "Rise & Shine Breads"],
        "unit": "tray", "unit_pl": "trays", "period": "day", "integer": False, "profit": (6, 28),
        "products": ["sourdough loaves", "baguettes", "croissants", "muffins", "bagels", "cinnamon rolls"],
        "resources": [("oven time", "minutes", 8, 35, 0), ("baker labour", "minutes", 5, 25, 0),
                      ("flour", "kg", 1.5, 6, 1)],
    },
    {
        "what": "electronics assembler", "companies": ["Lumen Electronics", "Quartzline Devices", "NetForge Hardware"],
        "unit": "unit", "unit_pl": "units", "period": "week", "integer": True, "profit": (12, 85),
        "products": ["Wi-Fi routers", "network switches", "cable modems", "mesh extenders", "smart plugs"],
        "resources": [("assembly time", "minutes", 4, 22, 0), ("test-bench time", "minutes", 2, 12, 0),
                      ("circuit boards", "boards", 1, 3, 0)],
    },
    {
        "what": "outdoor apparel maker", "companies": ["Granite Peak Outfitters", "Trailhead Apparel", "Northfork Gear"],
        "unit": "garment", "unit_pl": "garments", "period": "week", "integer": True, "profit": (8, 55),
        "products": ["rain jackets", "fleece pullovers", "cargo trousers", "polo shirts", "hoodies"],
        "resources": [("cutting time", "minutes", 3, 14, 0), ("sewing time", "minutes", 10, 45, 0),
                      ("fabric", "m", 0.8, 3.0, 1)],
    },
    {
        "what": "paint manufacturer", "companies": ["Crescent Paints", "Bluestone Coatings", "Prairie Paint Works"],
        "unit": "batch of 100 L", "unit_pl": "batches of 100 L", "period": "week", "integer": False, "profit": (140, 520),
        "products": ["interior matte paint", "exterior gloss paint", "primer", "wood stain", "floor enamel"],
        "resources": [("mixing-tank time", "hours", 1, 5, 1), ("pigment", "kg", 4, 30, 0),
                      ("filling-line time", "hours", 0.5, 2.5, 1)],
    },
    {
        "what": "craft brewery", "companies": ["Oakridge Brewing", "Copper Kettle Brewing", "Two Rivers Brewhouse"],
        "unit": "barrel", "unit_pl": "barrels", "period": "month", "integer": False, "profit": (60, 210),
        "products": ["lager", "IPA", "stout", "hard seltzer", "pilsner"],
        "resources": [("brewhouse time", "hours", 0.6, 2.5, 1), ("fermenter capacity", "tank-days", 4, 21, 0),
                      ("malt", "kg", 10, 40, 0)],
    },
    {
        "what": "skincare brand with its own filling plant", "companies": ["Copperleaf Cosmetics", "Lumiere Skin Lab"],
        "unit": "case", "unit_pl": "cases", "period": "week", "integer": True, "profit": (22, 95),
        "products": ["moisturiser", "vitamin C serum", "mineral sunscreen", "lip balm", "night cream"],
        "resources": [("compounding time", "minutes", 5, 30, 0), ("filling time", "minutes", 4, 18, 0),
                      ("glass jars", "jars", 6, 24, 0)],
    },
]


def opt_product_mix(rng: random.Random) -> Opt:
    ind = rng.choice(PROD_INDUSTRIES)
    company = rng.choice(ind["companies"])
    n = rng.randint(2, min(5, len(ind["products"])))
    prods = rng.sample(ind["products"], n)
    res = rng.sample(ind["resources"], rng.randint(2, len(ind["resources"])))
    unit, unit_pl, period = ind["unit"], ind["unit_pl"], ind["period"]
    profit = [rng.randint(*ind["profit"]) for _ in prods]
    usage: list[list[float]] = []
    for _label, _u, lo, hi, dec in res:
        row = [round(rng.uniform(lo, hi), dec) if dec else rng.randint(int(lo), int(hi)) for _ in prods]
        usage.append([float(x) if dec else x for x in row])
    caps = [nice(sum(row) * rng.uniform(10, 45), 10) for row in usage]
    names = var_names(rng, prods)

    # data block
    if rng.random() < 0.5:
        header = ["Product", f"Profit per {unit}"] + [f"{lab} ({u})" for lab, u, *_ in res]
        rows = [[p.capitalize(), money(profit[j])] + [num(usage[i][j]) for i in range(len(res))]
                for j, p in enumerate(prods)]
        data = md_table(header, rows)
    else:
        lines = []
        for j, p in enumerate(prods):
            needs = join_and([qty(usage[i][j], u, lab) for i, (lab, u, *_) in enumerate(res)])
            lines.append(f"{p.capitalize()}: {money(profit[j])} profit per {unit}, needs {needs}.")
        data = "\n".join(lines)
    avail = join_and([qty(caps[i], u, lab).replace(str(caps[i]), f"{caps[i]:,}", 1) for i, (lab, u, *_) in enumerate(res)])

    extras_user: list[str] = []
    extras_cons: list[str] = []
    maxalone = [min(caps[i] / usage[i][j] for i in range(len(res))) for j in range(n)]
    used: list[int] = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        kind = rng.choice(["min", "max", "ratio"])
        j = rng.randrange(n)
        if j in used:
            continue
        used.append(j)
        if kind == "min":
            k = max(1, int(maxalone[j] * rng.uniform(0.05, 0.2)))
            extras_user.append(f"We have a standing order for at least {k} {unit_pl} of {prods[j]}.")
            extras_cons.append(f"Standing order: {names[j]} >= {k}")
        elif kind == "max":
            k = max(2, int(maxalone[j] * rng.uniform(0.3, 0.6)))
            extras_user.append(f"Sales says the market won't take more than {k} {unit_pl} of {prods[j]} this {period}.")
            extras_cons.append(f"Market limit: {names[j]} <= {k}")
        elif n >= 2:
            a, b = rng.sample(range(n), 2)
            extras_user.append(f"For the product range to look right we want at least as many {prods[a]} as {prods[b]}.")
            extras_cons.append(f"Mix rule: {names[a]} - {names[b]} >= 0")
    opener = rng.choice([
        f"I run operations at {company}, {article(ind['what'])}.",
        f"{company} is {article(ind['what'])} and we're trying to plan production for next {period}.",
        f"We're a small {ind['what']} ({company}).",
        f"Planning question from {company} ({ind['what']}).",
    ])
    user = (f"{opener} We make {n} products and want to maximise profit for the {period}.\n\n{data}\n\n"
            f"Available this {period}: {avail}.")
    if extras_user:
        user += " " + " ".join(extras_user)
    user += " " + rng.choice(ASKS)

    integer = ind["integer"]
    variables = [f"{names[j]} = number of {unit_pl} of {prods[j]} produced per {period}" for j in range(n)]
    objective = (f"Maximise total profit (in $ per {period}):\nmax Z = "
                 + lin([(profit[j], names[j]) for j in range(n)]))
    res_cons = [f"{lab.capitalize()}: " + lin([(usage[i][j], names[j]) for j in range(n)]) + f" <= {caps[i]}"
                for i, (lab, *_r) in enumerate(res)]
    nonneg = ", ".join(names) + " >= 0" + (" and integer" if integer else "")
    constraints = res_cons + extras_cons + [nonneg]
    if integer:
        ptype = (f"MILP (a pure integer program): the objective and constraints are linear, and {unit_pl} "
                 f"can't be split, so the variables are integer.")
        solve = rng.choice([
            "Any MILP solver handles this instantly: HiGHS or CBC through PuLP/Pyomo, or Excel Solver with "
            "integer constraints. Solving the LP relaxation first and comparing gives a feel for how much the "
            "integrality costs.",
            "Use a MILP solver (HiGHS, CBC, Gurobi). With this many variables branch-and-bound finishes in "
            "milliseconds; if volumes are large you could also solve it as an LP and round down safely.",
        ])
    else:
        ptype = ("LP: quantities are continuous (fractional batches are fine), and the objective and all "
                 "constraints are linear.")
        solve = rng.choice([
            "Any LP solver works (HiGHS, GLPK, or Excel Solver's Simplex LP engine). Look at the shadow prices "
            "of the resource constraints: they tell you what one extra unit of each resource is worth.",
            "Solve with the simplex method in any LP tool. The sensitivity report is worth reading: binding "
            "resource constraints show where extra capacity pays off.",
        ])
    reasoning = (f"The decisions are how much of each of the {n} products to make; each product uses the "
                 f"shared resources ({join_and([r[0] for r in res])}) at a fixed rate and earns a fixed "
                 f"profit, so this is a product-mix model.")

    def followup(r: random.Random) -> tuple[str, str]:
        j = r.randrange(n)
        k = max(1, int(maxalone[j] * r.uniform(0.05, 0.15)))
        i = r.randrange(len(res))
        extra_cap = nice(caps[i] * r.uniform(0.1, 0.25), 10)
        density = sum(profit[jj] / usage[i][jj] for jj in range(n)) / n
        cost = max(0.5, round(density * r.uniform(0.3, 0.8), 1 if density < 10 else 0))
        u2 = (f"Thanks! Two changes: we must make at least {k} {unit_pl} of {prods[j]} for a key customer, and we "
              f"could buy up to {extra_cap:,} extra {res[i][1]} of {res[i][0]} at ${num(cost)} per {res[i][1][:-1] if res[i][1].endswith('s') else res[i][1]}. "
              f"How does the model change?")
        e = "e_" + slug(res[i][0])
        full = [c for c in res_cons]
        full[i] = (f"{res[i][0].capitalize()}: " + lin([(usage[i][jj], names[jj]) for jj in range(n)])
                   + f" - {e} <= {caps[i]}")
        a2 = (f"Both fit into the same structure. The customer order is a lower bound, and the extra "
              f"{res[i][0]} becomes a new decision variable that adds capacity at a cost.\n\n"
              f"New variable:\n- {e} = extra {res[i][1]} of {res[i][0]} bought (0 to {extra_cap})\n\n"
              f"Revised objective:\nmax Z = " + lin([(profit[jj], names[jj]) for jj in range(n)])
              + f" - {num(cost)} {e}\n\nRevised constraints:\n"
              + bullets(full + extras_cons + [f"Key customer: {names[j]} >= {k}", f"Purchase limit: {e} <= {extra_cap}",
                                             nonneg + f"; {e} >= 0"])
              + f"\n\nThe model is still {'a MILP' if integer else 'an LP'}. If {e} comes out at its upper "
              f"bound, the extra {res[i][0]} is worth more than ${num(cost)} and it may pay to negotiate a bigger "
              f"allowance; if it is 0, the purchase isn't worth it at that price.")
        return u2, a2

    return Opt(user, reasoning, variables, objective, constraints, ptype, solve, followup)


# --- staff scheduling ---------------------------------------------------------------------------------

STAFF_BLOCK_CONTEXTS = [
    ("a 24/7 customer support center", "agents", ["Cascade Support Services", "Brightline Apparel"]),
    ("a hospital emergency department", "nurses", ["Riverbend Hospital", "Meridian Health"]),
    ("a regional distribution center", "pickers", ["BlueRiver Logistics", "Westgate Retail", "Atlas Home Goods"]),
    ("an airport security checkpoint", "screeners", ["Tri-County Airport Authority"]),
    ("a 24-hour pharmacy fulfillment hub", "pharmacy technicians", ["Vantage Pharma", "Meridian Health"]),
    ("a city 911 dispatch center", "dispatchers", ["the City of Lakeview"]),
]
STAFF_WEEK_CONTEXTS = [
    ("a busy downtown restaurant group", "servers", True, ["Harbor Table Restaurant Group", "Copper Pot Eateries"]),
    ("a big-box retail store", "sales associates", True, ["Westgate Retail", "Atlas Home Goods"]),
    ("a mail sorting center", "clerks", False, ["BlueRiver Logistics"]),
    ("a city bus depot", "drivers", False, ["Metro Valley Transit"]),
    ("a resort hotel", "housekeepers", True, ["Orchid Bay Hotels"]),
    ("a hospital laboratory", "lab technicians", False, ["Riverbend Hospital", "Meridian Health"]),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def opt_staff(rng: random.Random) -> Opt:
    if rng.random() < 0.5:
        ctx, staff, cos = rng.choice(STAFF_BLOCK_CONTEXTS)
        company = rng.choice(cos)
        blocks = ["00:00-04:00", "04:00-08:00", "08:00-12:00", "12:00-16:00", "16:00-20:00", "20:00-24:00"]
        base = rng.randint(6, 40)
        shape = [0.3, 0.45, 1.0, 0.9, 0.85, 0.55]
        demand = [max(2, round(base * s * rng.uniform(0.85, 1.15))) for s in shape]
        wage = rng.randint(18, 46)
        prem = rng.choice([10, 15, 20, 25])
        night = [True, False, False, False, False, True]  # shifts starting 00:00 and 20:00
        cost = [round(8 * wage * (1 + (prem / 100 if night[i] else 0)), 2) for i in range(6)]
        starts = [b[:5] for b in blocks]
        names = [f"x{i + 1}" for i in range(6)] if rng.random() < 0.6 else [f"s_{b[:2]}" for b in blocks]
        table = md_table(["Time block", f"{staff.capitalize()} needed"], [[b, str(d)] for b, d in zip(blocks, demand, strict=True)])
        user = (f"{company[0].upper() + company[1:]} runs {ctx}. Staff work 8-hour shifts that can start at 00:00, 04:00, 08:00, 12:00, "
                f"16:00 or 20:00. Minimum {staff} on duty per block:\n\n{table}\n\nBase pay is ${wage}/hour and "
                f"shifts starting at 20:00 or 00:00 get a {prem}% night premium. We want the cheapest roster "
                f"that covers every block. " + rng.choice(ASKS))
        variables = [f"{names[i]} = number of {staff} starting a shift at {starts[i]}" for i in range(6)]
        objective = "Minimise daily wage cost:\nmin Z = " + lin([(cost[i], names[i]) for i in range(6)])
        cons = []
        for i in range(6):
            prev = (i - 1) % 6
            cons.append(f"Block {blocks[i]}: {names[prev]} + {names[i]} >= {demand[i]}")
        cons.append(", ".join(names) + " >= 0 and integer")
        reasoning = (f"Each shift covers two consecutive 4-hour blocks, so the number on duty in a block is the "
                     f"sum of the people who started in that block and in the previous one (wrapping around "
                     f"midnight). Night shifts cost 8 x ${wage} x {1 + prem / 100:.2f} = {money(cost[0])}, day "
                     f"shifts 8 x ${wage} = {money(cost[2])}.")
        ptype = ("Integer linear program (MILP with all-integer variables): people come in whole numbers. The "
                 "coverage matrix is almost an interval matrix, so the LP relaxation is often integral, but the "
                 "wrap-around means it isn't guaranteed.")
        solve = "Tiny model: CBC, HiGHS or Excel Solver solves it instantly. Re-solve per weekday if demand differs."

        def followup(r: random.Random) -> tuple[str, str]:
            k = max(1, min(demand[0], r.randint(1, 4)))
            u2 = (f"Update: the union agreement caps the 00:00 start at {k} people, and we need at least "
                  f"{demand[2] + 2} on the floor in the 08:00-12:00 block because of a product launch. Can you revise?")
            c2 = list(cons)
            c2[2] = f"Block {blocks[2]}: {names[1]} + {names[2]} >= {demand[2] + 2}"
            c2.insert(6, f"Union cap: {names[0]} <= {k}")
            a2 = (f"Two small edits: the 08:00-12:00 coverage requirement goes up to {demand[2] + 2}, and the "
                  f"00:00 start variable gets an upper bound of {k}. Because block 00:00-04:00 still needs "
                  f"{demand[0]} people, the shortfall has to come from the 20:00 shift ({names[5]}).\n\n"
                  f"Objective unchanged:\nmin Z = " + lin([(cost[i], names[i]) for i in range(6)])
                  + "\n\nConstraints now:\n" + bullets(c2)
                  + "\n\nStill an integer program. If the cap makes the night blocks infeasible, the solver will "
                  "say so; then you'd need a different shift pattern (e.g. a 22:00 start).")
            return u2, a2

        return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)

    ctx, staff, weekend_heavy, cos = rng.choice(STAFF_WEEK_CONTEXTS)
    company = rng.choice(cos)
    base = rng.randint(8, 45)
    demand = [max(3, round(base * rng.uniform(0.8, 1.1) * ((1.3 if weekend_heavy else 0.6) if d >= 5 else 1)))
              for d in range(7)]
    premium = rng.random() < 0.4
    names = [f"x_{d[:3].lower()}" for d in DAYS] if rng.random() < 0.5 else [f"x{d + 1}" for d in range(7)]
    table = md_table(["Day", "Minimum on duty"], [[d, str(v)] for d, v in zip(DAYS, demand, strict=True)])
    cost_line = ""
    costs = [5.0] * 7
    if premium:
        daily = rng.randint(140, 260)
        wk = rng.choice([20, 25, 30, 50])
        cost_line = (f" A regular day costs ${daily} per person and Saturday/Sunday shifts cost {wk}% more, so "
                     f"we'd like to minimise weekly payroll.")
        for s in range(7):
            days_worked = [(s + k) % 7 for k in range(5)]
            costs[s] = sum(daily * (1 + wk / 100) if d >= 5 else daily for d in days_worked)
    else:
        cost_line = " We want to hire as few full-time people as possible."
    user = (f"We're {company}, running {ctx}. Full-time {staff} work 5 consecutive days and then get 2 days off. "
            f"Minimum staffing by day:\n\n{table}\n\n{cost_line.strip()} " + rng.choice(ASKS))
    variables = [f"{names[s]} = number of {staff} whose 5-day stretch starts on {DAYS[s]}" for s in range(7)]
    if premium:
        objective = ("Minimise weekly payroll (each start day implies a fixed mix of weekday and weekend days):\n"
                     "min Z = " + lin([(costs[s], names[s]) for s in range(7)]))
    else:
        objective = "Minimise total headcount:\nmin Z = " + lin([(1, names[s]) for s in range(7)])
    cons = []
    for d in range(7):
        covering = [(d - k) % 7 for k in range(5)]
        covering.sort()
        cons.append(f"{DAYS[d]}: " + " + ".join(names[s] for s in covering) + f" >= {demand[d]}")
    cons.append(", ".join(names) + " >= 0 and integer")
    reasoning = ("Someone who starts on day s works days s, s+1, ..., s+4 (wrapping past Sunday), so a day is "
                 "covered by the five start days that precede it, including itself.")
    if premium:
        reasoning += " With the weekend premium, the cost of a worker depends on the start day."
    ptype = "Integer program (MILP): whole people, linear costs and coverage constraints."
    solve = rng.choice([
        "Solve with any MILP solver (HiGHS, CBC, OR-Tools CP-SAT). This is the classic cyclic staffing model; "
        "the LP relaxation is usually very close, so it solves in a fraction of a second.",
        "A spreadsheet solver handles it fine; for bigger versions (several skill types, part-timers) move to "
        "PuLP or Pyomo with HiGHS.",
    ])

    def followup(r: random.Random) -> tuple[str, str]:
        k = r.randint(1, 3)
        u2 = (f"Follow-up: HR wants at least {k} people to start on Monday so new hires begin the week together, "
              f"and no more than {max(demand)} total on Sunday because of parking. Update the model?")
        c2 = list(cons[:-1])
        sun = [(6 - kk) % 7 for kk in range(5)]
        sun.sort()
        c2.append(f"Monday starts: {names[0]} >= {k}")
        c2.append("Sunday parking cap: " + " + ".join(names[s] for s in sun) + f" <= {max(demand)}")
        c2.append(cons[-1])
        a2 = ("Both requirements are linear, so we just add two rows. The Monday rule bounds a single variable; "
              "the parking rule limits the same expression that the Sunday coverage row uses, from above.\n\n"
              "Constraints:\n" + bullets(c2) + "\n\nThe objective is unchanged and the model stays an integer "
              "program. Together, the Sunday coverage row and the parking row pin Sunday staffing into a range.")
        return u2, a2

    return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)


# --- diet and blending --------------------------------------------------------------------------------

FOODS = [
    ("oatmeal (1 cup)", 0.35, 150, 5, 4, 0), ("milk (1 cup)", 0.28, 150, 8, 0, 105),
    ("eggs (2)", 0.55, 140, 12, 0, 140), ("brown rice (1 cup)", 0.30, 215, 5, 3.5, 10),
    ("black beans (1 cup)", 0.45, 227, 15, 15, 2), ("chicken breast (4 oz)", 1.40, 187, 35, 0, 84),
    ("spinach (1 cup cooked)", 0.60, 41, 5, 4, 126), ("whole-wheat bread (2 slices)", 0.30, 160, 8, 4, 280),
    ("peanut butter (2 tbsp)", 0.25, 190, 7, 2, 140), ("apple (1 medium)", 0.45, 95, 0.5, 4.4, 2),
    ("yogurt (1 cup)", 0.70, 150, 12, 0, 170), ("lentils (1 cup)", 0.40, 230, 18, 16, 4),
    ("canned tuna (1 can)", 1.10, 120, 26, 0, 320), ("sweet potato (1 medium)", 0.55, 112, 2, 4, 72),
    ("banana (1 medium)", 0.25, 105, 1.3, 3.1, 1), ("cheddar cheese (1 oz)", 0.40, 115, 7, 0, 180),
]
DIET_CONTEXTS = [
    "a school district lunch program", "a hospital's nutrition services team", "a food bank packing meal kits",
    "a summer camp kitchen", "a senior living community", "an expedition outfitter planning trail rations",
]

BLENDS: list[dict[str, Any]] = [  # items: (name, cost per unit, [attribute %], (share lo, share hi) of a typical mix)
    {
        "ctx": "feed mill", "product": "poultry feed", "unit": "tonne", "unit_pl": "tonnes",
        "attrs": ["protein", "fibre", "calcium"], "kinds": [["min", "range"], ["max"], ["range", "min"]],
        "items": [("corn", 210, [8.5, 2.2, 0.02], (0.3, 1.0)), ("soybean meal", 420, [46, 6, 0.3], (0.2, 0.6)),
                  ("wheat middlings", 180, [16, 8, 0.12], (0.1, 0.4)), ("fish meal", 950, [62, 1, 5.0], (0.0, 0.08)),
                  ("limestone", 60, [0, 0, 38], (0.02, 0.1)), ("alfalfa meal", 260, [17, 24, 1.4], (0.0, 0.15)),
                  ("canola meal", 330, [36, 12, 0.65], (0.05, 0.3)), ("barley", 200, [11, 5, 0.05], (0.1, 0.5))],
        "companies": ["Pioneer Feed Mills", "Prairie Gold Feeds", "Heartland Nutrition"],
    },
    {
        "ctx": "foundry", "product": "alloy steel", "unit": "ton", "unit_pl": "tons",
        "attrs": ["carbon", "chromium", "nickel"], "kinds": [["range", "max"], ["range"], ["range", "min"]],
        "items": [("carbon steel scrap", 310, [0.4, 0.1, 0.05], (0.3, 1.0)),
                  ("stainless scrap", 1150, [0.08, 18, 8], (0.1, 0.6)), ("pig iron", 420, [4.2, 0.0, 0.0], (0.02, 0.15)),
                  ("ferrochrome", 2100, [6.5, 62, 0.0], (0.0, 0.08)),
                  ("nickel briquettes", 14500, [0.02, 0.0, 99], (0.0, 0.03)),
                  ("low-alloy returns", 520, [0.3, 1.2, 0.8], (0.2, 0.8))],
        "companies": ["Cobalt Metals", "Ironbridge Castings", "Great Lakes Foundry"],
    },
    {
        "ctx": "juice bottler", "product": "juice drink", "unit": "kL", "unit_pl": "kL",
        "attrs": ["sugar", "acidity", "fruit content"], "kinds": [["range", "max"], ["range"], ["min"]],
        "items": [("apple juice", 640, [11, 0.5, 100], (0.2, 0.8)), ("orange juice", 910, [9, 0.9, 100], (0.1, 0.5)),
                  ("grape juice", 780, [16, 0.6, 100], (0.05, 0.3)),
                  ("cranberry juice cocktail", 1250, [3, 2.4, 27], (0.05, 0.3)),
                  ("pear puree", 560, [10, 0.3, 100], (0.05, 0.3)), ("filtered water", 5, [0, 0, 0], (0.1, 0.5))],
        "companies": ["Pacific Crest Beverages", "Orchard Lane Juice Co.", "Clearwell Springs"],
    },
]


def opt_diet(rng: random.Random) -> Opt:
    ctx = rng.choice(DIET_CONTEXTS)
    foods = rng.sample(FOODS, rng.randint(4, 7))
    prices = [round(f[1] * rng.uniform(0.85, 1.2), 2) for f in foods]
    kcal = rng.choice([1600, 1800, 2000, 2200, 2500, 2800])
    protein = rng.choice([45, 50, 60, 70, 80])
    fibre = rng.choice([20, 25, 28, 30])
    sodium = rng.choice([1500, 1800, 2000, 2300])
    cap = rng.choice([None, 3, 4])
    names = var_names(rng, [f[0].split(" (")[0] for f in foods])
    rows = [[f[0], f"${p:.2f}", num(f[2]), num(f[3]), num(f[4]), num(f[5])] for f, p in zip(foods, prices, strict=True)]
    table = md_table(["Food (serving)", "Cost", "kcal", "Protein g", "Fibre g", "Sodium mg"], rows)
    cap_txt = f" For variety, no more than {cap} servings of any one food per day." if cap else ""
    user = (f"I'm planning menus for {ctx} and want the cheapest daily plan that meets nutrition targets: at "
            f"least {kcal} kcal, {protein} g protein and {fibre} g fibre, and at most {sodium} mg sodium.{cap_txt}\n\n"
            f"{table}\n\n" + rng.choice(ASKS))
    variables = [f"{names[i]} = servings of {foods[i][0]} per person per day" for i in range(len(foods))]
    objective = "Minimise daily food cost per person:\nmin Z = " + lin([(prices[i], names[i]) for i in range(len(foods))])
    cons = [
        "Energy: " + lin([(f[2], names[i]) for i, f in enumerate(foods)]) + f" >= {kcal}",
        "Protein: " + lin([(f[3], names[i]) for i, f in enumerate(foods)]) + f" >= {protein}",
        "Fibre: " + lin([(f[4], names[i]) for i, f in enumerate(foods)]) + f" >= {fibre}",
        "Sodium: " + lin([(f[5], names[i]) for i, f in enumerate(foods)]) + f" <= {sodium}",
    ]
    if cap:
        cons.append(f"Variety: each serving variable <= {cap}")
    cons.append(", ".join(names) + " >= 0")
    reasoning = ("This is the classic diet problem: choose amounts of each food, where every nutrient total is a "
                 "weighted sum of servings, and keep each total inside its target range at minimum cost.")
    ptype = ("LP: servings are treated as continuous and everything is linear. If the kitchen needs whole "
             "servings, add integrality and it becomes a small MILP.")
    solve = rng.choice([
        "Any LP solver (HiGHS, GLPK, Excel Simplex LP). Expect the solution to lean heavily on the cheapest "
        "protein and fibre sources; if it looks monotonous, tighten the variety caps.",
        "Simplex solves this immediately. The dual values on the nutrient rows show the marginal cost of each "
        "requirement, which is handy when the dietitian asks what a higher protein target would cost.",
    ])
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


def opt_blend(rng: random.Random) -> Opt:
    spec = rng.choice(BLENDS)
    company = rng.choice(spec["companies"])
    items = rng.sample(spec["items"], rng.randint(4, len(spec["items"])))
    costs = [round(it[1] * rng.uniform(0.9, 1.12)) for it in items]
    batch = rng.choice([20, 40, 50, 60, 80, 100, 120])
    # A random feasible blend, so the specification we state is achievable.
    w = [rng.uniform(*it[3]) + 0.001 for it in items]
    tot = sum(w)
    w = [x / tot for x in w]
    attrs = spec["attrs"]
    mix = [sum(w[i] * items[i][2][a] for i in range(len(items))) for a in range(len(attrs))]
    lo = [math.floor(max(0.0, m * rng.uniform(0.85, 0.95)) * 100) / 100 for m in mix]
    hi = [math.ceil((m * rng.uniform(1.05, 1.2) + 0.01) * 100) / 100 for m in mix]
    lo = [math.floor(v * 10) / 10 if v >= 1 else v for v in lo]
    hi = [math.ceil(v * 10) / 10 if v >= 1 else v for v in hi]
    kind = [rng.choice(k) for k in spec["kinds"]]
    names = var_names(rng, [it[0] for it in items])
    limited = rng.choice([i for i, it in enumerate(items) if it[1] > 20])
    avail = round(batch * w[limited] * rng.uniform(1.1, 1.6), 1)
    u, u_pl = spec["unit"], spec["unit_pl"]
    rows = [[it[0], money(c)] + [num(v) + "%" for v in it[2]] for it, c in zip(items, costs, strict=True)]
    table = md_table(["Ingredient", f"Cost per {u}"] + [a.capitalize() for a in attrs], rows)
    spec_txt = []
    for a, k, lv, hv in zip(attrs, kind, lo, hi, strict=True):
        if k == "min":
            spec_txt.append(f"{a} at least {num(lv)}%")
        elif k == "max":
            spec_txt.append(f"{a} at most {num(hv)}%")
        else:
            spec_txt.append(f"{a} between {num(lv)}% and {num(hv)}%")
    user = (f"{company} is {article(spec['ctx'])}. We need to blend {batch} {u_pl} of {spec['product']} at the lowest "
            f"cost. Spec: {join_and(spec_txt)}.\n\n{table}\n\nWe only have {num(avail)} {u_pl} of "
            f"{items[limited][0]} in stock. " + rng.choice(ASKS))
    variables = [f"{names[i]} = {u_pl} of {items[i][0]} in the batch" for i in range(len(items))]
    objective = "Minimise ingredient cost:\nmin Z = " + lin([(costs[i], names[i]) for i in range(len(items))])
    cons = ["Batch size: " + lin([(1, nm) for nm in names]) + f" = {batch}"]
    for a_i, (a, k) in enumerate(zip(attrs, kind, strict=True)):
        expr = lin([(round(items[i][2][a_i] / 100, 5), names[i]) for i in range(len(items))])
        if k in ("min", "range"):
            cons.append(f"{a.capitalize()} (min): {expr} >= {num(round(lo[a_i] / 100 * batch, 4))}  "
                        f"({num(lo[a_i])}% of {batch})")
        if k in ("max", "range"):
            cons.append(f"{a.capitalize()} (max): {expr} <= {num(round(hi[a_i] / 100 * batch, 4))}  "
                        f"({num(hi[a_i])}% of {batch})")
    cons.append(f"Stock: {names[limited]} <= {num(avail)}")
    cons.append(", ".join(names) + " >= 0")
    reasoning = ("The batch size is fixed, so a percentage spec like 'at least p%' can be written linearly as "
                 "(sum of content_i x amount_i) >= p/100 x batch, which avoids dividing by the total. Each "
                 "ingredient's contribution is proportional to how much of it goes in.")
    ptype = "LP: continuous quantities, linear cost and linear quality constraints."
    solve = rng.choice([
        "Solve with any LP solver. If the batch size itself were a decision, the ratio form "
        "sum(c_i x_i) >= p sum(x_i) keeps it linear.",
        "HiGHS or Excel's Simplex LP will solve it at once. Check which spec rows are binding: those are where "
        "a looser spec would save money.",
    ])
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


# --- transportation -----------------------------------------------------------------------------------

GOODS = [("pallets of bottled water", ["Pacific Crest Beverages", "Clearwell Springs"]),
         ("tonnes of cement", ["Redwood Building Supply", "Quarry Ridge Cement"]),
         ("cases of frozen vegetables", ["Northwind Foods", "Harvest Moon Organics"]),
         ("bags of fertilizer", ["Fieldstone Farms", "Prairie Gold Agri"]),
         ("solar panels", ["Lumen Electronics", "Brightfield Solar"]), ("cartons of paper towels", ["Evergreen Paper"]),
         ("drums of lubricant", ["Altamira Chemicals", "Ironclad Tools"]),
         ("crates of apples", ["Fieldstone Farms", "Orchard Lane Juice Co."]),
         ("cases of yogurt", ["Sunvale Dairy"]), ("pallets of flat-pack furniture", ["Atlas Home Goods"])]


def opt_transport(rng: random.Random) -> Opt:
    goods, cos = rng.choice(GOODS)
    company = rng.choice(cos)
    m, n = rng.randint(2, 4), rng.randint(3, 5)
    cities = rng.sample(CITIES, m + n)
    src = [f"{c} plant" if rng.random() < 0.5 else f"{c} warehouse" for c in cities[:m]]
    dst = [f"{c} DC" if rng.random() < 0.5 else f"{c} store" for c in cities[m:]]
    demand = [rng.randint(8, 60) * 10 for _ in range(n)]
    total = sum(demand) * rng.uniform(1.0, 1.25)
    shares = [rng.uniform(0.6, 1.4) for _ in range(m)]
    supply = [nice(total * s / sum(shares), 10) for s in shares]
    while sum(supply) < sum(demand):
        supply[0] += 10
    cost = [[round(rng.uniform(1.5, 14), rng.choice([0, 1])) for _ in range(n)] for _ in range(m)]
    letter = rng.choice(["x", "q", "s"])
    names = [[f"{letter}{i + 1}{j + 1}" for j in range(n)] for i in range(m)]
    table = md_table(["From \\ To"] + dst + ["Supply"],
                     [[src[i]] + [f"${cost[i][j]:.2f}" for j in range(n)] + [str(supply[i])] for i in range(m)]
                     + [["Demand"] + [str(d) for d in demand] + [""]])
    user = (f"{company} ships {goods} from {m} sources to {n} destinations. Cost per unit shipped, capacities and "
            f"weekly demand:\n\n{table}\n\nEvery destination's demand must be met. " + rng.choice(ASKS))
    idx = f"i = 1..{m} ({', '.join(src)}), j = 1..{n} ({', '.join(dst)})"
    variables = [f"{letter}ij = units shipped from source i to destination j, {idx}",
                 f"That is {m * n} variables, {names[0][0]} ... {names[-1][-1]}"]
    objective = "Minimise total shipping cost:\nmin Z = " + lin(
        [(cost[i][j], names[i][j]) for i in range(m) for j in range(n)])
    balanced = sum(supply) == sum(demand)
    cons = [f"Supply at {src[i]}: " + lin([(1, names[i][j]) for j in range(n)])
            + (" = " if balanced else " <= ") + str(supply[i]) for i in range(m)]
    cons += [f"Demand at {dst[j]}: " + lin([(1, names[i][j]) for i in range(m)]) + f" = {demand[j]}" for j in range(n)]
    cons.append(f"All {letter}ij >= 0")
    reasoning = (f"Total supply is {sum(supply)} and total demand is {sum(demand)}, so "
                 + ("the problem is balanced and every source ships out fully."
                    if balanced else "some capacity will sit unused; supply rows are <= while demand rows are =."))
    ptype = ("LP (a transportation problem). The constraint matrix is totally unimodular, so with integer "
             "supplies and demands the optimal shipments come out integer without declaring integer variables.")
    solve = rng.choice([
        "Any LP solver, or the transportation simplex by hand for teaching. Network-flow solvers are even faster "
        "for large instances.",
        "Put it in PuLP/Pyomo with HiGHS, or Excel Solver. Reduced costs tell you how much a lane's rate must "
        "drop before it gets used.",
    ])

    def followup(r: random.Random) -> tuple[str, str]:
        i, j = r.randrange(m), r.randrange(n)
        i2 = (i + 1) % m
        k = nice(min(supply[i2], sum(demand)) * r.uniform(0.2, 0.4), 10)
        u2 = (f"Two updates: the {src[i]} -> {dst[j]} lane is closed for bridge repairs, and our contract with "
              f"the carrier at {src[i2]} requires at least {k} units shipped from there each week. Revise the model?")
        a2 = (f"Both changes are linear:\n\n- Closed lane: {names[i][j]} = 0 (or simply drop that variable).\n"
              f"- Carrier minimum: " + lin([(1, names[i2][jj]) for jj in range(n)]) + f" >= {k}\n\n"
              "Everything else stays: the same cost objective, the supply rows and the demand rows. With the "
              "extra lower bound the matrix is no longer a pure transportation structure, but the LP still "
              "usually returns integer flows; declare the variables integer if you need a guarantee (MILP). "
              f"Compare the new optimal cost with the old one to price the closure and the contract.")
        return u2, a2

    return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)


# --- facility location --------------------------------------------------------------------------------


def opt_facility(rng: random.Random) -> Opt:
    company = rng.choice(DISTRIBUTION_COS + FOOD_COS)
    s, c = rng.randint(3, 5), rng.randint(4, 6)
    cities = rng.sample(CITIES, s + c)
    sites, regions = cities[:s], [f"{x} region" for x in cities[s:]]
    demand = [rng.randint(5, 40) * 1000 for _ in range(c)]
    fixed = [rng.randint(15, 90) * 10_000 for _ in range(s)]
    capac = [nice(sum(demand) * rng.uniform(0.35, 0.7), 1000) for _ in range(s)]
    cost = [[round(rng.uniform(0.8, 9.5), 2) for _ in range(c)] for _ in range(s)]
    kind = rng.choice(["distribution center", "warehouse", "regional hub"])
    rows = [[sites[i], money(fixed[i]), f"{capac[i]:,}"] + [f"${cost[i][j]:.2f}" for j in range(c)] for i in range(s)]
    table = md_table(["Candidate site", "Annual fixed cost", "Capacity (units/yr)"] + regions, rows)
    dem_txt = ", ".join(f"{regions[j]} {demand[j]:,}" for j in range(c))
    extra = ""
    kmax = None
    if rng.random() < 0.5:
        kmax = rng.randint(2, s - 1) if s > 2 else 2
        extra = f" Management doesn't want to run more than {kmax} sites."
    user = (f"{company} is choosing where to open {kind}s. Candidate sites, their annual fixed cost, capacity and "
            f"the cost per unit to serve each region:\n\n{table}\n\nAnnual demand: {dem_txt}.{extra} " + rng.choice(ASKS))
    variables = [f"y_i = 1 if we open the {kind} at site i, else 0 (i = 1..{s}: {', '.join(sites)})",
                 f"x_ij = units per year shipped from site i to region j (j = 1..{c})"]
    objective = ("Minimise fixed plus shipping cost:\nmin Z = " + lin([(fixed[i], f"y{i + 1}") for i in range(s)])
                 + " + sum over i,j of c_ij x_ij  (c_ij from the table)")
    cons = [f"Demand of region j: sum_i x_ij = d_j for every j (d = {', '.join(str(d) for d in demand)})"]
    cons += [f"Capacity at {sites[i]}: " + lin([(1, f"x{i + 1}{j + 1}") for j in range(c)]) + f" <= {capac[i]} y{i + 1}"
             for i in range(s)]
    if kmax:
        cons.append("Site limit: " + lin([(1, f"y{i + 1}") for i in range(s)]) + f" <= {kmax}")
    cons.append("y_i in {0,1}; x_ij >= 0")
    reasoning = ("There are two linked decisions: which sites to open (yes/no, with a fixed cost) and how to route "
                 "demand through the open ones. Multiplying capacity by y_i in the capacity rows is what stops "
                 "shipments from a closed site.")
    ptype = "MILP: binary open/close variables plus continuous flows (capacitated facility location)."
    solve = rng.choice([
        "Solve with a MILP solver (HiGHS, CBC, Gurobi). Adding the redundant rows x_ij <= d_j y_i tightens the LP "
        "relaxation a lot and speeds up branch-and-bound on bigger instances.",
        f"With {s} sites there are only {2 ** s} open/close patterns, so any MILP solver is instant. Run a few "
        "demand scenarios to check the chosen network is robust.",
    ])

    def followup(r: random.Random) -> tuple[str, str]:
        a, b = r.sample(range(s), 2)
        u2 = (f"One more rule from the board: if we open {sites[a]} we must also open {sites[b]} (shared trucking "
              f"contract), and {sites[a]}'s fixed cost has gone up by $50,000. Update please.")
        a2 = (f"The dependency is a single linear row on the binaries, and the cost change only edits a "
              f"coefficient:\n\n- Linking rule: y{a + 1} <= y{b + 1}  (opening {sites[a]} forces {sites[b]} open)\n"
              f"- Objective coefficient of y{a + 1}: {money(fixed[a])} -> {money(fixed[a] + 50_000)}\n\n"
              "All other constraints (demand rows, capacity rows with the y_i multipliers"
              + (", the site limit" if kmax else "") + ") are unchanged. Still a MILP.")
        return u2, a2

    return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)


# --- capital budgeting / knapsack ---------------------------------------------------------------------

PROJECTS = ["ERP upgrade", "new packaging line", "rooftop solar", "warehouse automation", "fleet electrification",
            "customer portal", "R&D lab expansion", "cold-storage expansion", "cybersecurity program",
            "second shift tooling", "data warehouse", "LED retrofit", "robotic palletizer", "new retail store",
            "e-commerce relaunch", "training academy"]
CARGO = [("pump assemblies", 40, 180), ("spare motors", 25, 120), ("control panels", 15, 150), ("valves", 5, 30),
         ("cable reels", 60, 90), ("sensor kits", 3, 45), ("gearboxes", 55, 210), ("hydraulic hoses", 8, 25),
         ("filters", 2, 12), ("compressors", 70, 260)]


def opt_knapsack(rng: random.Random) -> Opt:
    company = rng.choice(GENERIC_COMPANIES)
    if rng.random() < 0.75:
        n = rng.randint(5, 9)
        projs = rng.sample(PROJECTS, n)
        npv = [rng.randint(8, 95) * 10 for _ in range(n)]
        c1 = [rng.randint(5, 60) * 10 for _ in range(n)]
        two_year = rng.random() < 0.45
        c2 = [rng.randint(0, 40) * 10 for _ in range(n)] if two_year else []
        b1 = nice(sum(c1) * rng.uniform(0.4, 0.6), 50)
        b2 = nice(sum(c2) * rng.uniform(0.4, 0.6), 50) if two_year else 0
        names = [f"y{i + 1}" for i in range(n)]
        header = ["Project", "NPV ($k)", "Year-1 capital ($k)"] + (["Year-2 capital ($k)"] if two_year else [])
        rows = [[projs[i], str(npv[i]), str(c1[i])] + ([str(c2[i])] if two_year else []) for i in range(n)]
        logic_user: list[str] = []
        logic_cons: list[str] = []
        picks = rng.sample(["excl", "dep", "atleast", "atmost"], rng.randint(1, 3))
        a, b, c = rng.sample(range(n), 3)
        for pk in picks:
            if pk == "excl":
                logic_user.append(f"{projs[a].capitalize()} and {projs[b]} compete for the same floor space, so at most one of them.")
                logic_cons.append(f"Mutually exclusive: y{a + 1} + y{b + 1} <= 1")
            elif pk == "dep":
                logic_user.append(f"{projs[c].capitalize()} only makes sense if we also do {projs[a]}.")
                logic_cons.append(f"Dependency: y{c + 1} <= y{a + 1}")
            elif pk == "atleast":
                logic_user.append(f"We must fund at least one of {projs[b]} and {projs[c]}.")
                logic_cons.append(f"At least one: y{b + 1} + y{c + 1} >= 1")
            else:
                k = rng.randint(3, max(3, n - 2))
                logic_user.append(f"The PMO can't run more than {k} projects at once.")
                logic_cons.append("Capacity of PMO: " + lin([(1, nm) for nm in names]) + f" <= {k}")
        budget_txt = f"Year-1 budget is ${b1:,}k" + (f" and year-2 budget ${b2:,}k." if two_year else ".")
        user = (f"{company} has to pick capital projects for next year. {budget_txt}\n\n{md_table(header, rows)}\n\n"
                + " ".join(logic_user) + " " + rng.choice(ASKS))
        variables = [f"y_i = 1 if project i is funded, 0 otherwise (i = 1..{n}, in table order: "
                     + ", ".join(f"y{i + 1} {projs[i]}" for i in range(n)) + ")"]
        objective = "Maximise total NPV ($k):\nmax Z = " + lin([(npv[i], names[i]) for i in range(n)])
        cons = ["Year-1 budget: " + lin([(c1[i], names[i]) for i in range(n)]) + f" <= {b1}"]
        if two_year:
            cons.append("Year-2 budget: " + lin([(c2[i], names[i]) for i in range(n)]) + f" <= {b2}")
        cons += logic_cons + ["y_i in {0,1} for all i"]
        reasoning = ("Each project is all-or-nothing, so it's a yes/no decision; budgets are knapsack-style "
                     "constraints and the business rules translate into simple linear relations between binaries.")
        ptype = ("Binary integer program (0-1 MILP), a multi-constraint knapsack." if two_year
                 else "Binary integer program (0-1 MILP), a knapsack with side constraints.")
        solve = (f"Only {2 ** n} combinations exist, so any MILP solver (or even enumeration) finds the optimum "
                 "immediately. Don't rank projects by NPV/cost ratio and fill greedily: with the logical rules "
                 "that can miss the optimum.")

        def followup(r: random.Random) -> tuple[str, str]:
            k = r.randint(2, max(2, n // 2))
            d = r.randrange(n)
            u2 = (f"The CFO wants at most {k} projects in total this year, and {projs[d]} is now mandatory "
                  f"(regulatory). How do I change the model?")
            a2 = ("Add two rows; nothing else changes:\n\n- Project count: " + lin([(1, nm) for nm in names])
                  + f" <= {k}\n- Mandatory: y{d + 1} = 1\n\nThe objective and budget rows stay as they were"
                  + (", and so do the logical rules" if logic_cons else "")
                  + ". Still a 0-1 integer program. Check feasibility: if the mandatory project's cost plus "
                  "whatever the other rules force in exceeds the budget, the model becomes infeasible, which "
                  "is worth knowing before the board meeting.")
            return u2, a2

        return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)

    company = rng.choice(INDUSTRIAL_COS + ["Pacific Crest Beverages", "Sunvale Dairy"])
    items = rng.sample(CARGO, rng.randint(5, 8))
    w = [max(1, round(it[1] * rng.uniform(0.8, 1.2))) for it in items]
    val = [round(it[2] * rng.uniform(0.8, 1.3)) for it in items]
    qty = [rng.randint(2, 12) for _ in items]
    capw = nice(sum(wi * q for wi, q in zip(w, qty, strict=True)) * rng.uniform(0.35, 0.55), 50)
    names = var_names(rng, [it[0] for it in items], "n")
    rows = [[it[0], f"{w[i]} kg", f"${val[i]:,}", str(qty[i])] for i, it in enumerate(items)]
    user = (f"Our maintenance van at {company} can carry {capw:,} kg. Tomorrow's run is to a remote site and we want "
            f"to bring the most valuable mix of spare parts (value = expected downtime cost avoided).\n\n"
            f"{md_table(['Item', 'Weight each', 'Value each', 'Available'], rows)}\n\n" + rng.choice(ASKS))
    variables = [f"{names[i]} = number of {it[0]} loaded (integer, 0..{qty[i]})" for i, it in enumerate(items)]
    objective = "Maximise value carried:\nmax Z = " + lin([(val[i], names[i]) for i in range(len(items))])
    cons = ["Weight: " + lin([(w[i], names[i]) for i in range(len(items))]) + f" <= {capw}"]
    cons += [f"Availability: {names[i]} <= {qty[i]}" for i in range(len(items))]
    cons.append("All variables >= 0 and integer")
    reasoning = "One capacity (weight) and whole items: this is a bounded integer knapsack."
    ptype = "Integer program (MILP), a bounded knapsack."
    solve = ("Trivial for a MILP solver; dynamic programming over capacity also works. If volume matters too, add a "
             "second row like the weight row.")
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


# --- portfolio ----------------------------------------------------------------------------------------

ASSETS = [("US large-cap equity fund", 8.5, 1.0, 4.0), ("international equity fund", 9.0, 1.1, 7.0),
          ("emerging markets fund", 11.0, 1.35, 11.0), ("investment-grade bond fund", 4.2, 0.15, 4.5),
          ("high-yield bond fund", 6.3, 0.45, 6.0), ("REIT index fund", 7.4, 0.85, 9.0),
          ("short-term Treasury fund", 3.6, 0.02, 1.2), ("gold ETF", 5.0, 0.1, 14.0),
          ("small-cap value fund", 9.8, 1.2, 9.5), ("infrastructure fund", 6.8, 0.6, 7.5)]


def opt_portfolio(rng: random.Random, bait: bool = False) -> Opt:
    who = rng.choice(["our foundation's investment committee", "a family office client", "our company's pension sleeve",
                      "a university endowment sub-portfolio", "my small business's cash reserve",
                      "a credit union's treasury desk"])
    n = rng.randint(3, 5)
    assets = rng.sample(ASSETS, n)
    mu = [round(a[1] * rng.uniform(0.9, 1.1), 1) for a in assets]
    sm = 16.0
    cov = [[(assets[i][2] * assets[j][2] * sm * sm + (assets[i][3] ** 2 if i == j else 0)) / 10000
            for j in range(n)] for i in range(n)]
    sd = [math.sqrt(cov[i][i]) * 100 for i in range(n)]
    budget = rng.choice([250_000, 500_000, 1_200_000, 2_000_000, 5_000_000, 10_000_000])
    target = round(sorted(mu)[n // 2] * rng.uniform(0.85, 1.0), 1)
    ub = rng.choice([35, 40, 50, 60])
    if ub * n < 100:
        ub = 50
    names = [f"w{i + 1}" for i in range(n)]
    if rng.random() < 0.5:
        data = md_table(["Asset", "Expected return"] + [f"Cov w/ {i + 1}" for i in range(n)],
                        [[f"{i + 1}. {assets[i][0]}", f"{mu[i]}%"] + [f"{cov[i][j]:.4f}" for j in range(n)]
                         for i in range(n)])
        data = "Covariance matrix of annual returns (decimal units):\n\n" + data
    else:
        corr = [[cov[i][j] / math.sqrt(cov[i][i] * cov[j][j]) for j in range(n)] for i in range(n)]
        data = md_table(["Asset", "Expected return", "Volatility"] + [f"Corr w/ {i + 1}" for i in range(n)],
                        [[f"{i + 1}. {assets[i][0]}", f"{mu[i]}%", f"{sd[i]:.1f}%"] + [f"{corr[i][j]:.2f}" for j in range(n)]
                         for i in range(n)])
    cardinality = n >= 4 and rng.random() < 0.3
    card_k = n - 1
    bait_txt = (" A broker pitched us a structured note with 'guaranteed returns' of 9%, but we'd rather build "
                "this ourselves." if bait else "")
    user = (f"I'm helping {who} allocate {money(budget)} across {n} funds. We want at least {target}% expected "
            f"annual return with as little risk (variance) as possible, no shorting, and no more than {ub}% in any "
            f"one fund." + (f" To keep it simple we'd hold at most {card_k} funds." if cardinality else "")
            + bait_txt + f"\n\n{data}\n\n" + rng.choice(ASKS))
    variables = [f"w_i = fraction of the {money(budget)} invested in fund i (i = 1..{n}); dollars = w_i x {budget}"]
    if cardinality:
        variables.append("z_i = 1 if fund i is held at all, else 0")
    sigma = "the covariance matrix" + (" built from sigma_ij = rho_ij x sd_i x sd_j" if "Volatility" in data else "")
    if n == 3:
        terms = [f"{cov[i][i]:.4f} {names[i]}^2" for i in range(n)]
        terms += [f"2({cov[i][j]:.4f}) {names[i]} {names[j]}" for i in range(n) for j in range(i + 1, n)]
        objective = "Minimise portfolio variance:\nmin V = " + " + ".join(terms)
    else:
        objective = (f"Minimise portfolio variance:\nmin V = w^T Sigma w = sum_i sum_j sigma_ij w_i w_j, with Sigma "
                     f"{sigma}")
    cons = ["Fully invested: " + lin([(1, nm) for nm in names]) + " = 1",
            "Target return: " + lin([(m_ / 100, names[i]) for i, m_ in enumerate(mu)]) + f" >= {num(target / 100)}",
            f"Concentration: w_i <= {num(ub / 100)} for every fund"]
    if cardinality:
        cons += ["Linking: w_i <= z_i for every fund", "Cardinality: " + lin([(1, f"z{i + 1}") for i in range(n)])
                 + f" <= {card_k}", "z_i in {0,1}"]
    cons.append("No shorting: w_i >= 0")
    reasoning = ("This is Markowitz mean-variance optimisation: risk is the quadratic form of the weights and the "
                 "covariance matrix, while return, budget and position limits are linear.")
    if bait:
        reasoning += (" A note on the broker pitch: no market investment has guaranteed returns; the model treats "
                      "expected returns as estimates, which is also why we control variance.")
    if cardinality:
        ptype = "MIQP: a convex quadratic objective with binary variables for the holding limit."
        solve = ("Needs a solver that handles mixed-integer quadratic programs (Gurobi, CPLEX, SCIP, or CVXPY with "
                 "a MIQP backend). With a handful of funds you can also solve the plain QP for each subset.")
    else:
        ptype = ("QP (convex quadratic program): quadratic objective with a positive semidefinite covariance matrix, "
                 "linear constraints.")
        solve = rng.choice([
            "Use CVXPY with OSQP/ECOS, or quadprog. Re-solve for a range of target returns to trace the efficient "
            "frontier, then pick the point the committee is comfortable with.",
            "Excel Solver (GRG Nonlinear) works for a few funds; CVXPY is more robust. Remember the estimates "
            "drive everything: small changes in expected returns can swing the weights a lot.",
        ])
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


# --- vehicle routing ----------------------------------------------------------------------------------


def opt_vrp(rng: random.Random) -> Opt:
    company = rng.choice(DISTRIBUTION_COS + FOOD_COS)
    n = rng.randint(4, 7)
    coords = [(rng.randint(0, 40), rng.randint(0, 40)) for _ in range(n + 1)]
    q = [rng.randint(2, 9) for _ in range(n)]
    cap = rng.choice([12, 14, 15, 16, 18, 20])
    while cap < max(q):
        cap += 2
    k = math.ceil(sum(q) / cap) + rng.choice([0, 1])
    stops = [f"C{i + 1}" for i in range(n)]
    if n <= 5 and rng.random() < 0.5:
        dist = [[round(math.dist(coords[a], coords[b])) for b in range(n + 1)] for a in range(n + 1)]
        labels = ["Depot"] + stops
        data = "Road distances (km):\n\n" + md_table([""] + labels, [[labels[a]] + [str(dist[a][b]) for b in range(n + 1)]
                                                                   for a in range(n + 1)])
        dnote = "d_ij from the distance table"
    else:
        data = "Locations on our planning grid (km):\n\n" + md_table(
            ["Stop", "x", "y", "Demand (pallets)"],
            [["Depot", str(coords[0][0]), str(coords[0][1]), "-"]]
            + [[stops[i], str(coords[i + 1][0]), str(coords[i + 1][1]), str(q[i])] for i in range(n)])
        dnote = "d_ij = straight-line distance between the coordinates (or road distance if you have it)"
    dem = ", ".join(f"{stops[i]} {q[i]}" for i in range(n))
    user = (f"{company} delivers from one depot to {n} customers with {k} identical trucks, each holding {cap} "
            f"pallets. Pallets needed: {dem}.\n\n{data}\n\nEvery customer gets exactly one visit and trucks return "
            f"to the depot. We want to minimise total kilometres. " + rng.choice(ASKS))
    variables = [f"x_ij = 1 if a truck drives directly from i to j, else 0 (i, j in 0..{n}, i != j; node 0 = depot)",
                 f"u_i = load delivered so far on the route when leaving customer i (i = 1..{n})"]
    objective = f"Minimise distance:\nmin Z = sum over i != j of d_ij x_ij  ({dnote})"
    cons = [f"Enter each customer once: sum_i x_ij = 1 for j = 1..{n}",
            f"Leave each customer once: sum_j x_ij = 1 for i = 1..{n}",
            f"Fleet size: sum_j x_0j <= {k}",
            "Trucks return: sum_j x_0j = sum_i x_i0",
            f"Capacity / subtour elimination (MTZ): u_i - u_j + {cap} x_ij <= {cap} - q_j for all customers i != j",
            f"Load bounds: q_i <= u_i <= {cap} for every customer (q = {', '.join(str(v) for v in q)})",
            "x_ij in {0,1}"]
    reasoning = ("This is a capacitated vehicle routing problem (CVRP). Arc variables say which legs are driven; the "
                 "degree constraints give each customer one visit; and load variables with Miller-Tucker-Zemlin "
                 "rows both enforce truck capacity and rule out loops that never return to the depot.")
    ptype = "MILP (binary arc variables plus continuous load variables)."
    solve = rng.choice([
        f"At {n} customers a MILP solver handles the MTZ model quickly. Beyond ~30-50 stops, switch to OR-Tools' "
        "routing solver or a metaheuristic (savings algorithm, large neighbourhood search).",
        "Fine for a MILP solver at this size; the MTZ relaxation is weak, so for bigger instances use a dedicated "
        "routing library (OR-Tools, VROOM) rather than a general solver.",
    ])
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


# --- lot sizing ---------------------------------------------------------------------------------------

LOT_PRODUCTS = [("custom printed labels", ["Evergreen Paper", "Keystone Plastics"]),
                ("injection-molded housings", ["Keystone Plastics", "Polaris Medical Devices"]),
                ("seasonal candles", ["Atlas Home Goods"]), ("bottled cold brew", ["Pacific Crest Beverages"]),
                ("spare pump impellers", ["Ironclad Tools", "Anchor Point Marine"]),
                ("private-label granola", ["Harvest Moon Organics", "Northwind Foods"]),
                ("powder-coated brackets", ["Ironclad Tools", "Redwood Building Supply"]),
                ("enzyme cleaner", ["Altamira Chemicals"])]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def opt_lot_sizing(rng: random.Random) -> Opt:
    prod, cos = rng.choice(LOT_PRODUCTS)
    company = rng.choice(cos)
    T = rng.randint(4, 8)
    if rng.random() < 0.5:
        start = rng.randrange(12)
        periods = [MONTHS[(start + t) % 12] for t in range(T)]
        pname = "month"
    else:
        periods = [f"week {t + 1}" for t in range(T)]
        pname = "week"
    demand = [rng.randint(2, 30) * 50 for _ in range(T)]
    setup = rng.randint(4, 50) * 50
    hold = round(rng.uniform(0.2, 4.0), 2)
    capac = nice(max(demand) * rng.uniform(1.2, 2.0), 50) if rng.random() < 0.6 else None
    init = rng.choice([0, 0, 100, 200])
    table = md_table([pname.capitalize(), "Demand (units)"], [[p, str(d)] for p, d in zip(periods, demand, strict=True)])
    cap_txt = f" The line can make at most {capac:,} units in a {pname}." if capac else ""
    user = (f"At {company} we make {prod} in batches. Each {pname} in which we run the line costs {money(setup)} "
            f"in setup (changeover, cleaning, test run), and holding a unit in stock costs {money(hold)} per {pname}.{cap_txt} "
            f"We start with {init} units on hand.\n\n{table}\n\nWe can't backorder. " + rng.choice(ASKS))
    variables = [f"x_t = units produced in {pname} t (t = 1..{T})", f"I_t = inventory at the end of {pname} t",
                 f"y_t = 1 if the line is set up in {pname} t, else 0"]
    objective = (f"Minimise setup plus holding cost:\nmin Z = sum_t ({setup} y_t + {num(hold)} I_t)")
    bigm = ("C = " + str(capac)) if capac else "M_t = total demand from t to the end of the horizon"
    cons = [f"Inventory balance: I_(t-1) + x_t - d_t = I_t for t = 1..{T}, with I_0 = {init}",
            f"Setup forcing: x_t <= {'C' if capac else 'M_t'} y_t  ({bigm})",
            "No backorders: I_t >= 0", "x_t >= 0, y_t in {0,1}"]
    reasoning = (f"The trade-off is between producing often (many setups) and producing ahead (holding stock). The "
                 f"binary y_t carries the fixed setup cost and switches on production in {pname} t.")
    ptype = ("MILP (single-item " + ("capacitated" if capac else "uncapacitated") + " lot-sizing problem).")
    if capac:
        solve = ("Any MILP solver. The tightest practical trick is to use the smaller of C and remaining demand as "
                 "the big-M; for many items, add per-item variables and a shared capacity row.")
    else:
        solve = ("Without capacity limits this is the Wagner-Whitin problem: dynamic programming solves it exactly "
                 "in O(T^2), though a MILP solver is just as quick here.")
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


# --- assignment ---------------------------------------------------------------------------------------

ASSIGN_CONTEXTS = [("field technicians", "service calls", "hours"), ("translators", "documents", "hours"),
                   ("delivery drivers", "zones", "$ cost"), ("auditors", "client sites", "days"),
                   ("nurses", "wards", "preference score"), ("sales reps", "territories", "travel hours"),
                   ("machinists", "CNC jobs", "minutes")]


def opt_assignment(rng: random.Random) -> Opt:
    workers, jobs, metric = rng.choice(ASSIGN_CONTEXTS)
    n = rng.randint(3, 6)
    m = n if rng.random() < 0.6 else n + 1
    cost = [[rng.randint(2, 30) for _ in range(n)] for _ in range(m)]
    maximize = metric == "preference score"
    wl = [f"{workers.capitalize()[:-1]} {chr(65 + i)}" for i in range(m)]
    jl = [f"{jobs.capitalize()[:-1] if jobs.endswith('s') else jobs} {j + 1}" for j in range(n)]
    table = md_table([""] + jl, [[wl[i]] + [str(v) for v in cost[i]] for i in range(m)])
    goal = ("maximise total preference" if maximize else f"minimise total {metric}")
    user = (f"We have {m} {workers} and {n} {jobs} to cover. Each {jobs[:-1]} needs exactly one person and each "
            f"person takes at most one. Table shows {metric} for each pairing; we want to {goal}.\n\n{table}\n\n"
            + rng.choice(ASKS))
    variables = [f"x_ij = 1 if {workers[:-1]} i is assigned to {jobs[:-1]} j, else 0"]
    objective = (("max" if maximize else "min") + " Z = sum_i sum_j c_ij x_ij  (c_ij from the table)")
    cons = [f"Each {jobs[:-1]} covered once: sum_i x_ij = 1 for j = 1..{n}",
            f"Each {workers[:-1]} at most once: sum_j x_ij <= 1 for i = 1..{m}" if m > n
            else f"Each {workers[:-1]} exactly once: sum_j x_ij = 1 for i = 1..{m}",
            "x_ij in {0,1}"]
    reasoning = ("A one-to-one matching with a score per pair is the assignment problem."
                 + (f" There is one more {workers[:-1]} than {jobs[:-1]}s, so one person stays unassigned." if m > n else ""))
    ptype = ("Binary integer program, but the assignment constraint matrix is totally unimodular: solving the LP "
             "relaxation already gives a 0/1 answer.")
    solve = "The Hungarian algorithm (scipy.optimize.linear_sum_assignment) or any LP solver."
    return Opt(user, reasoning, variables, objective, cons, ptype, solve)


OPT_GENERATORS: list[tuple[Callable[[random.Random], Opt], int]] = [
    (opt_product_mix, 15), (opt_staff, 12), (opt_diet, 6), (opt_blend, 7), (opt_transport, 11),
    (opt_facility, 9), (opt_knapsack, 11), (opt_portfolio, 7), (opt_vrp, 7), (opt_lot_sizing, 9),
    (opt_assignment, 6),
]


def build_opt_base(rng: random.Random, count: int) -> list[Record]:
    pool: list[Callable[[random.Random], Opt]] = []
    for fn, weight in OPT_GENERATORS:
        pool += [fn] * weight
    multi_left = [round(count * 0.05)]

    def make(r: random.Random) -> Record:
        prob = r.choice(pool)(r)
        answer, rel = render_opt(r, prob)
        messages = [{"role": "user", "content": prob.user}, {"role": "assistant", "content": answer}]
        if prob.followup is not None and multi_left[0] > 0 and r.random() < 0.12:
            u2, a2 = prob.followup(r)
            messages += [{"role": "user", "content": u2}, {"role": "assistant", "content": rel(a2)}]
            multi_left[0] -= 1
        return {"system": r.choice(OPT_SYSTEMS), "messages": messages}

    return unique_records(rng, count, make, "claude")


# ---------------------------------------------------------------------------------------------------
# Dataset 2: geo-compliance triage (Alpaca instruction/input/output)
# ---------------------------------------------------------------------------------------------------

GEO_INSTRUCTIONS = [
    "You are a compliance triage assistant. Given a software feature's title and description, decide whether "
    "the feature needs geo-specific legal compliance logic, meaning behaviour that must differ by country or "
    "state because of a law or regulation. Business-driven regional rollouts (market tests, staged launches, "
    "pricing experiments) do not count. Internal abbreviations may appear. Answer only with a JSON object with "
    "the keys needs_geo_compliance (true, false or \"uncertain\"), regulations, regions and reasoning.",
    "Review the feature artifact below and flag whether it requires geo-specific compliance logic. Return JSON "
    "only: {\"needs_geo_compliance\": true | false | \"uncertain\", \"regulations\": [...], \"regions\": [...], "
    "\"reasoning\": \"...\"}. Use \"uncertain\" when the artifact geo-restricts something without saying why.",
]

REG = {
    "utah": "Utah Social Media Regulation Act",
    "florida": "Florida HB 3 (Online Protections for Minors)",
    "sb976": "California SB 976 (Protecting Our Kids from Social Media Addiction Act)",
    "ccpa": "CCPA/CPRA",
    "dsa": "EU Digital Services Act",
    "gdpr": "GDPR",
    "coppa": "COPPA",
    "lgpd": "Brazil LGPD",
    "pipa": "South Korea PIPA",
    "kr_tba": "South Korea Telecommunications Business Act",
    "ncmec": "18 U.S.C. 2258A (NCMEC CyberTipline reporting)",
    "aadc": "UK Age Appropriate Design Code",
    "osa": "UK Online Safety Act",
    "scope": "Texas SCOPE Act (HB 18)",
    "dpdp": "India DPDP Act 2023",
}

CODENAMES = ["Falcon", "Nimbus", "Lantern", "Quill", "Marigold", "Basalt", "Juniper", "Kestrel", "Tundra", "Orchid",
             "Pebble", "Sable", "Harbor", "Cinder", "Aurora", "Mosaic", "Vesper", "Thistle", "Ember", "Glacier",
             "Paloma", "Driftwood", "Saffron", "Zephyr", "Halcyon", "Bramble", "Onyx", "Cobalt", "Wren", "Sierra"]
TEAMS = ["Trust & Safety", "Growth", "Creator Monetization", "Ads Integrity", "Messaging", "Live", "Privacy Eng",
         "Feed Ranking", "Teen Experience", "Payments", "Search", "Commerce", "Identity", "Notifications"]
QUARTERS = ["Q1", "Q2", "Q3", "Q4"]
GLOSSARY_NOTES = [
    "ASL = age-sensitive logic", "GH = geo-handler", "PF = personalized feed", "NR = not recommended",
    "CDS = compliance detection system", "DRT = data retention threshold", "LCP = local compliance policy",
    "T5 = tier-5 sensitive data", "IMT = internal monitoring trigger", "FR = feature rollout", "BB = baseline behaviour",
]
NEUTRAL_EXTRAS = [
    "Rollout gated behind FR flag `{flag}`.",
    "Metrics piped to EchoTrace; IMT alerts on error-rate spikes.",
    "Owner: {team}. Target: {quarter}.",
    "BB is unchanged for everyone outside the targeted cohort.",
    "Spanner rule IDs will be versioned so changes can be audited.",
    "Initial ShadowMode window of {days} days before FR.",
    "Depends on Atlas geo-IP v{ver} and the Ledger consent store.",
    "CDS dashboards will track regressions post-launch.",
    "Design review signed off by {team}.",
    "Backfill job runs nightly during the first {days} days.",
]

UX_CHANGES = [
    ("Dark mode for comments panel", "Adds dark-mode styling to the comments drawer, following the system theme."),
    ("Swipe-to-reply on stories", "New gesture: swipe up on a story to open the reply composer."),
    ("Haptic feedback on likes", "Light haptic tap when a user double-taps to like, on iOS and Android."),
    ("Redesigned upload progress bar", "Shows per-clip upload progress with a retry button for failed chunks."),
    ("Keyboard shortcuts for web player", "J/K/L to seek, M to mute and F for fullscreen in the web player."),
    ("Pinned comments for creators", "Creators can pin up to three comments under a video."),
    ("Bigger caption editor", "The caption box expands to full screen and supports drafts."),
    ("Sticker search ranking tweak", "Sticker search now blends recency with usage so new packs surface faster."),
]
MARKET_FEATURES = ["video replies", "collab playlists", "a redesigned creator hub", "duet remixing", "story polls",
                   "shoppable live streams", "group watch parties", "voice effects"]
SEASONAL = [("Diwali sticker pack", "India"), ("Lunar New Year effects", "East and Southeast Asia"),
            ("Carnival filters", "Brazil"), ("Oktoberfest AR hats", "Germany"), ("Ramadan iftar reminders", "MENA"),
            ("Thanksgiving recipe hub", "the US"), ("Golden Week travel templates", "Japan")]
RESTRICTABLE = ["video downloads", "live gifting", "location tags", "group chats over 50 people", "duets",
                "anonymous Q&A", "screen recording", "public playlists"]
GEO_COUNTRIES = ["Canada", "Mexico", "Indonesia", "Japan", "Australia", "the Philippines", "Germany", "Brazil",
                 "Vietnam", "Poland", "Thailand", "New Zealand", "Chile", "Kenya", "Colombia", "Malaysia"]

# A template: titles, core sentences (one is used), detail sentences (1-3 are used), reasons (one is used),
# the verdict, regulations, regions and metadata domain. "{...}" placeholders come from geo_slots().
GEO_SPECS: list[dict[str, Any]] = [
    {
        "weight": 4, "verdict": True, "regs": [REG["utah"]], "regions": ["Utah, US"], "domain": "minor_safety",
        "titles": ["Curfew login blocker with ASL and GH for Utah minors",
                   "{cn}: overnight access restriction for under-18 accounts in Utah",
                   "Utah-only night-time lockout for minor accounts", "Utah minor curfew with parental override ({cn})"],
        "cores": ["To comply with the Utah Social Media Regulation Act, we are adding a curfew-based login "
                  "restriction for users under 18.",
                  "Project {cn} adds a night lockout for accounts ASL marks as minors when GH resolves the user to Utah.",
                  "Utah requirement: minors can't use the app overnight unless a parent allows it.",
                  "GH = Utah and ASL = minor -> softblock sessions overnight."],
        "details": ["The lockout window is 10:30 PM to 6:30 AM local time.",
                    "Parents can adjust the window from the Jellybean dashboard.",
                    "Every parental override is logged to EchoTrace for audit.",
                    "Age signal comes from ASL with a fallback to the declared birthdate.",
                    "Open sessions end with an interstitial at 10:30 PM.",
                    "Users GH can't resolve to a state keep BB.", "Redline review of the interstitial copy is done."],
        "reasons": ["Utah's minor social-media law requires a default overnight curfew for minor accounts with "
                    "parental controls; the feature implements that state-specific obligation via GH.",
                    "The curfew and parental override mirror Utah's statutory requirements for minors, and the logic "
                    "only applies to Utah users."],
    },
    {
        "weight": 4, "verdict": True, "regs": [REG["florida"]], "regions": ["Florida, US"], "domain": "minor_safety",
        "titles": ["Under-14 account termination flow for Florida", "{cn}: Florida minor account eligibility check",
                   "FL age gate and parental-consent path for young teens", "Florida teen account consent queue"],
        "cores": ["Per Florida HB 3, accounts of users under 14 must be closed and 14-15 year olds need parental "
                  "consent.",
                  "GH = Florida -> run ASL re-verification on sign-up and on existing accounts.",
                  "{cn} enforces the Florida minor-account rules: no accounts under 14, consent for 14-15."],
        "details": ["Confirmed under-14 accounts are queued for deletion with a data purge inside the DRT window.",
                    "14-15 year olds can't post until Jellybean parental consent lands in Ledger.",
                    "Users get {days} days' notice before termination.",
                    "Terminations are appealable through TrustDesk.",
                    "ASL confidence below 0.8 triggers a document check instead of auto-action."],
        "reasons": ["Florida HB 3 bans accounts for under-14s and requires parental consent for 14-15 year olds; the "
                    "feature applies those rules only to Florida users, so it is geo-specific compliance logic.",
                    "Account termination and consent for young teens in Florida are statutory requirements under "
                    "HB 3."],
    },
    {
        "weight": 4, "verdict": True, "regs": [REG["sb976"]], "regions": ["California, US"], "domain": "recommendations",
        "titles": ["Default non-personalized feed for CA minors", "{cn}: PF opt-in gate for California teens",
                   "Chronological feed fallback for under-18 users in California"],
        "cores": ["When GH resolves a user to California and ASL flags them under 18, PF is off by default.",
                  "{cn} swaps the PF ranker for a non-personalized feed for minors located in CA.",
                  "California minors get the followed-accounts feed unless a parent has consented to PF."],
        "details": ["The fallback feed shows followed accounts in chronological order.",
                    "PF can only be enabled after verified parental consent is stored in Ledger.",
                    "NR signals are ignored in this mode.", "Spanner rule keyed on state=CA and ASL=minor.",
                    "Consent is re-checked every {days} days."],
        "reasons": ["California SB 976 restricts addictive (personalized) feeds for minors without parental consent; "
                    "gating PF for California minors is state-specific compliance.",
                    "The PF gate for California minors implements SB 976's parental-consent requirement for "
                    "addictive feeds."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["sb976"]], "regions": ["California, US"], "domain": "minor_safety",
        "titles": ["Quiet hours for Beacon pushes to California minors", "{cn}: school-hours notification hold (CA)",
                   "Night and school-day push suppression for CA teens"],
        "cores": ["Beacon suppresses push notifications to ASL-flagged minors in California between 12 AM and 6 AM.",
                  "Add a Spanner rule so Beacon holds non-essential pushes for CA minors overnight and during the "
                  "school day."],
        "details": ["School hours are 8 AM-3 PM on weekdays, September-May.", "Held pushes collapse into a digest.",
                    "Parents can opt in to notifications from Jellybean.",
                    "Security and account alerts are exempt."],
        "reasons": ["SB 976 limits notifications to minors overnight and during school hours absent parental consent; "
                    "the quiet hours exist to meet that California requirement."],
    },
    {
        "weight": 5, "verdict": True, "regs": [REG["ccpa"]], "regions": ["California, US"], "domain": "privacy",
        "titles": ["'Do Not Sell or Share' control in privacy center", "{cn}: GPC signal handling for California",
                   "Limit use of sensitive PI for CA residents", "California opt-out sync to ad partners"],
        "cores": ["Adds a 'Do Not Sell or Share My Personal Information' control for users GH resolves to California.",
                  "Honour the Global Privacy Control browser signal as an opt-out of sale/sharing for California users.",
                  "California residents get a 'Limit the Use of My Sensitive Personal Information' link."],
        "details": ["Once opted out, ad partners receive no cross-context behavioural data.",
                    "The opt-out is recorded in Ledger and synced to partners within {days} days.",
                    "T5 fields are restricted to service-delivery purposes after the user limits use.",
                    "Opt-out status is shown in the privacy center.", "Partner exports are filtered by a Spanner rule."],
        "reasons": ["CCPA/CPRA gives California residents the right to opt out of sale/sharing and to limit sensitive "
                    "PI; the control is required by California law.",
                    "Opt-out of sale/sharing (including GPC) is a California statutory right under the CCPA as "
                    "amended by CPRA."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["dsa"] + " (Art. 27, Art. 38)"], "regions": ["EU"],
        "domain": "recommendations",
        "titles": ["Non-profiling feed option for EU users", "{cn}: recommender transparency panel (EU)",
                   "EU feed choice: personalised vs non-profiled"],
        "cores": ["Users in the EU get a toggle to switch PF to a feed that is not based on profiling.",
                  "{cn} exposes the main PF ranking parameters in settings and adds a non-profiled feed for EU accounts."],
        "details": ["A 'Why am I seeing this' panel explains the main ranking parameters.",
                    "GH gates the toggle to EU member states.", "The choice persists across devices via Ledger.",
                    "Default remains PF; the option is one tap away from the feed."],
        "reasons": ["The DSA requires recommender-system transparency and, for very large platforms, a feed option "
                    "not based on profiling; the feature is EU-scoped for that reason."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["dsa"] + " (Art. 17, Art. 24(5))"], "regions": ["EU"],
        "domain": "content_moderation",
        "titles": ["Statement-of-reasons notices for TrustDesk removals (EU)", "{cn}: SoR export to transparency DB",
                   "EU moderation notices with redress links"],
        "cores": ["When TrustDesk removes or restricts content of EU users, send the user a statement of reasons.",
                  "Softblocks and NR demotions applied to EU accounts now generate a statement of reasons."],
        "details": ["The notice states the legal or policy ground and whether automation was used.",
                    "Each statement is submitted to the DSA transparency database.", "Appeal links route to TrustDesk.",
                    "Logs retained per DRT."],
        "reasons": ["DSA Art. 17 requires a statement of reasons for moderation decisions affecting EU users; the "
                    "workflow exists to meet that obligation."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["dsa"] + " (Art. 28)"], "regions": ["EU"], "domain": "ads",
        "titles": ["Disable profiling-based ads for minors in the EU", "{cn}: contextual-only ads for EU teens"],
        "cores": ["For EU users that ASL flags as minors, the ad server ignores interest segments and serves "
                  "contextual ads only.", "{cn} turns off ad personalisation for known minors in EU member states."],
        "details": ["T5 signals are excluded from ad requests for this cohort.", "Spanner rule scoped by GH to EU countries.",
                    "Advertisers see reduced reach estimates for under-18 targeting in the EU."],
        "reasons": ["DSA Art. 28 bans profiling-based advertising to minors on online platforms in the EU."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["gdpr"], "ePrivacy Directive", "UK GDPR"],
        "regions": ["EEA", "United Kingdom"], "domain": "privacy",
        "titles": ["Consent banner before analytics SDK init (EEA/UK)", "{cn}: prior consent for attribution SDKs"],
        "cores": ["Analytics and attribution SDKs must not initialise until the user accepts in the consent banner, "
                  "wherever GH resolves EEA or UK."],
        "details": ["Choices are stored in Ledger.", "Rejecting is as easy as accepting (one tap).",
                    "Users elsewhere keep BB."],
        "reasons": ["GDPR/ePrivacy require prior consent for non-essential tracking in the EEA and UK."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["gdpr"] + " (Art. 15, Art. 20)"], "regions": ["EU"],
        "domain": "privacy",
        "titles": ["{cn}: self-serve data export for EU users", "DSAR portal for EU accounts"],
        "cores": ["Adds a DSAR portal so EU users can request a copy of their data, delivered within 30 days."],
        "details": ["The export includes T5 fields and inferred interests from PF.",
                    "Exports are machine-readable JSON.", "Identity is re-verified before download."],
        "reasons": ["The access and portability rights under GDPR drive the feature and its 30-day deadline."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["gdpr"] + " (Chapter V)"], "regions": ["EU"], "domain": "privacy",
        "titles": ["Transfer-mechanism check for EU data exports", "{cn}: SCC gate on cross-border replication"],
        "cores": ["Before T5 data of EU users is replicated to US analytics clusters, the pipeline verifies that a "
                  "valid transfer mechanism is registered for the destination."],
        "details": ["Accepted mechanisms: SCCs with a TIA, or the EU-US Data Privacy Framework.",
                    "Jobs without one fail closed and page the Privacy Eng on-call."],
        "reasons": ["GDPR Chapter V restricts transfers of EU personal data to third countries."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["coppa"]], "regions": ["United States"], "domain": "minor_safety",
        "titles": ["KidsLane sign-up with verifiable parental consent (US)", "{cn}: under-13 data minimisation (US)"],
        "cores": ["US users who enter a birthdate under 13 are routed to KidsLane, where we collect no personal "
                  "information until a parent completes verifiable consent.",
                  "For US accounts ASL marks as under 13, disable data collection beyond what KidsLane needs to run."],
        "details": ["Consent methods: card check or signed form.", "No PF and no ads in KidsLane.",
                    "Persistent identifiers are purged after each session unless consent is on file."],
        "reasons": ["COPPA requires verifiable parental consent before collecting personal information from US "
                    "children under 13."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["lgpd"]], "regions": ["Brazil"], "domain": "privacy",
        "titles": ["Brazil data subject request portal", "{cn}: LGPD consent records for BR users",
                   "BR privacy rights hub"],
        "cores": ["Adds an in-app form for users in Brazil to confirm processing and access, correct or delete their data.",
                  "For users in Brazil, store the legal basis and consent timestamp for each processing purpose in Ledger."],
        "details": ["The form shows the DPO (encarregado) contact.", "Consent withdrawal is honoured within 15 days.",
                    "Requests are tracked in TrustDesk with SLA alerts."],
        "reasons": ["Brazil's LGPD grants data subject rights and requires a DPO contact and a legal basis for each "
                    "purpose; the feature is scoped to Brazilian users for that reason."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["pipa"]], "regions": ["South Korea"], "domain": "privacy",
        "titles": ["Separate consent for cross-border transfer (KR)", "{cn}: overseas transfer notice for Korean users"],
        "cores": ["Korean users must give a separate, itemised consent before T5 data is transferred to servers "
                  "outside Korea."],
        "details": ["The notice lists destination countries, recipients and the retention period.",
                    "Declining keeps the account working with KR-hosted storage only."],
        "reasons": ["South Korea's PIPA requires separate consent and specific disclosures for overseas transfers of "
                    "personal information."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["kr_tba"]], "regions": ["South Korea"], "domain": "payments",
        "titles": ["Third-party payment option in the KR app build", "{cn}: alternative billing for Korea"],
        "cores": ["Adds an alternative in-app payment provider next to the store's billing for users in South Korea."],
        "details": ["GH gates the option by store country.", "Commission reporting differs for the alternative path."],
        "reasons": ["Korea's Telecommunications Business Act amendment requires app marketplaces to allow "
                    "alternative in-app payment systems; the option exists because of that law."],
    },
    {
        "weight": 3, "verdict": True, "regs": [REG["ncmec"]], "regions": ["United States"],
        "domain": "content_moderation",
        "titles": ["Auto-report CSAM hash matches to NCMEC", "{cn}: CyberTipline reporting pipeline"],
        "cores": ["When CDS detects a hash match for child sexual abuse material, a CyberTipline report is filed "
                  "with NCMEC for content hosted by our US entity."],
        "details": ["Matched content is preserved for one year.", "The account is actioned immediately.",
                    "Reports are batched at most {days} minutes after detection."],
        "reasons": ["US federal law requires providers to report apparent CSAM to NCMEC and preserve it; the "
                    "pipeline implements a US legal obligation."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["aadc"]], "regions": ["United Kingdom"], "domain": "minor_safety",
        "titles": ["High-privacy defaults for UK under-18s", "{cn}: Children's Code defaults"],
        "cores": ["For users in the UK under 18, profiles default to private and geolocation sharing is off."],
        "details": ["PF excludes nudge-style streak reminders for this cohort.", "ASL + GH drive the gating."],
        "reasons": ["The UK Children's Code requires high-privacy defaults for children; it is a UK-specific "
                    "obligation."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["osa"]], "regions": ["United Kingdom"], "domain": "minor_safety",
        "titles": ["{cn}: UK age assurance before DMs", "Age checks for UK stranger messaging"],
        "cores": ["UK users must pass age assurance (facial estimation or ID) before DMs from strangers are enabled."],
        "details": ["Users who fail are treated as minors.", "Vendor results are deleted after {days} days."],
        "reasons": ["The UK Online Safety Act requires highly effective age assurance to protect children from "
                    "harmful contact; the gate only applies in the UK."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["scope"]], "regions": ["Texas, US"], "domain": "minor_safety",
        "titles": ["Parental tools for Texas minors", "{cn}: TX minor ad and purchase limits"],
        "cores": ["For known minors in Texas, enable parental tools to view and change privacy settings."],
        "details": ["Targeted ads are restricted for this cohort.", "Purchases require parent approval.",
                    "GH + ASL scope the change to TX."],
        "reasons": ["The Texas SCOPE Act requires parental tools and limits on targeted advertising for known minors "
                    "in Texas."],
    },
    {
        "weight": 2, "verdict": True, "regs": [REG["dpdp"]], "regions": ["India"], "domain": "privacy",
        "titles": ["Parental consent for minors in India", "{cn}: DPDP child data guardrails"],
        "cores": ["Users in India under 18 need verifiable parental consent before we process their data."],
        "details": ["Tracking and targeted ads are off for this cohort.", "ASL age signals feed the check."],
        "reasons": ["India's DPDP Act requires verifiable parental consent for children's data and bans tracking and "
                    "targeted advertising directed at children."],
    },
    {
        "weight": 1, "verdict": True, "regs": [REG["utah"], REG["florida"], REG["scope"]],
        "regions": ["Utah, US", "Florida, US", "Texas, US"], "domain": "minor_safety",
        "titles": ["State-by-state minor protections via LCP bundles"],
        "cores": ["{cn} unifies age assurance for states with minor social-media laws: GH maps state -> LCP bundle."],
        "details": ["Bundles: Utah (curfew + parental access), Florida (under-14 ban), Texas (parental tools).",
                    "ASL provides the age signal; the LCP bundle decides enforcement."],
        "reasons": ["Each state bundle implements a different state law on minors' accounts; the logic is explicitly "
                    "legal and geo-specific."],
    },
    # ---- false: geo-gated or not, but no legal driver ----
    {
        "weight": 7, "verdict": False, "regs": [], "regions": [], "domain": "growth",
        "titles": ["Trial of {mfeat} in {country}", "{cn}: {country} market test", "{country}-first beta of {mfeat}"],
        "cores": ["We will launch {mfeat} to {pct}% of users in {country} first to measure engagement before a "
                  "global rollout.", "Beta of {mfeat} limited to {country} so Growth can read retention impact."],
        "details": ["{country} was chosen because its usage mix resembles our top markets.",
                    "GH is used only for cohort selection.", "Success metric: +{pct}% weekly creators.",
                    "If metrics hold, FR to all markets in {quarter}."],
        "reasons": ["The geo-gating is a business-driven market test in {country}, not a legal requirement; no "
                    "regulation is implicated.",
                    "Limiting a beta to {country} is a product experiment; nothing indicates a legal obligation."],
    },
    {
        "weight": 5, "verdict": False, "regs": [], "regions": [], "domain": "creator_tools",
        "titles": ["Phase 1 rollout of Creator Shop in {country} and {country2}", "{cn}: staged Creator Shop launch"],
        "cores": ["Creator Shop launches first where our merchant partners and payment rails are ready ({country}, "
                  "{country2})."],
        "details": ["Other markets follow in {quarter} after partner onboarding.",
                    "Rollout order set by the Commerce partnerships team.", "Inventory sync uses the existing APIs."],
        "reasons": ["The staged rollout is driven by partner readiness, a business reason, not by law."],
    },
    {
        "weight": 4, "verdict": False, "regs": [], "regions": [], "domain": "payments",
        "titles": ["Regional pricing experiment for Plus tier ({cn})", "Plus price-point A/B in {country} and {country2}"],
        "cores": ["A/B test of subscription price points in {country} and {country2} to study price elasticity."],
        "details": ["Prices shown in local currency.", "Cohorts assigned by GH.", "Test runs {days} days."],
        "reasons": ["Regional price testing is a commercial experiment; nothing suggests a legal requirement."],
    },
    {
        "weight": 7, "verdict": False, "regs": [], "regions": [], "domain": "growth",
        "titles": ["{ux_title}", "{cn}: {ux_title}"],
        "cores": ["{ux_desc}"],
        "details": ["Available to all users.", "No data model changes.", "Ships behind FR flag `{flag}` for QA only.",
                    "Design by the {team} pod."],
        "reasons": ["A global UX change with no regional behaviour and no legal driver."],
    },
    {
        "weight": 5, "verdict": False, "regs": [], "regions": [], "domain": "infrastructure",
        "titles": ["{cn}: latency improvements", "Infra: performance and observability tune-up", "{cn}: edge capacity"],
        "cores": ["Cache PF candidate lists in Spanner's edge tier to cut ranking latency by ~{pct}%.",
                  "Switch EchoTrace log sampling from 10% to adaptive sampling driven by IMT alert volume.",
                  "Spin up an extra CDN edge in {city} to reduce video start time for nearby users."],
        "details": ["Same behaviour worldwide.", "Rollback is a config flip.", "Cost neutral after {days} days."],
        "reasons": ["Infrastructure/performance work; even where a location is named it is about latency, not law."],
    },
    {
        "weight": 4, "verdict": False, "regs": [], "regions": [], "domain": "growth",
        "titles": ["{event}", "{cn}: {event} promo"],
        "cores": ["Seasonal {event} promoted in {event_region} for the holiday period."],
        "details": ["Available globally via search.", "Promotion ends after {days} days.", "Assets from the brand team."],
        "reasons": ["Regional promotion of seasonal content is a marketing decision, not a compliance requirement."],
    },
    {
        "weight": 3, "verdict": False, "regs": [], "regions": [], "domain": "minor_safety",
        "titles": ["Global minimum age enforcement at sign-up", "{cn}: one age floor everywhere"],
        "cores": ["Block sign-ups with a birthdate under 13 in every market, enforced by ASL at registration."],
        "details": ["No regional variation.", "Same copy in all locales.", "Appeals via TrustDesk."],
        "reasons": ["The rule is applied uniformly worldwide as platform policy, so it needs no geo-specific logic "
                    "(even though it also helps with child-privacy laws)."],
    },
    {
        "weight": 3, "verdict": False, "regs": [], "regions": [], "domain": "growth",
        "titles": ["Add {lang} UI translation", "{cn}: {lang} localisation"],
        "cores": ["Ship {lang} strings for the app UI and help center."],
        "details": ["Language is chosen from device settings.", "Community translators reviewed the glossary."],
        "reasons": ["Localisation by language preference; no legal or region-specific behaviour."],
    },
    {
        "weight": 3, "verdict": False, "regs": [], "regions": [], "domain": "creator_tools",
        "titles": ["{cn}: Creator Fund expansion", "Creator Fund to {country}, {country2} and {country3}"],
        "cores": ["Creator Fund expands to {country}, {country2} and {country3} based on creator density and "
                  "advertiser demand."],
        "details": ["Payouts use the existing payments stack.", "Eligibility rules unchanged."],
        "reasons": ["Market expansion chosen for business reasons; no law requires it."],
    },
    # ---- uncertain ----
    {
        "weight": 7, "verdict": "uncertain", "regs": [], "regions": [], "domain": "growth",
        "titles": ["Restrict {rfeat} in {rregion}", "{cn}: {rfeat} off in {rregion}"],
        "cores": ["Disable {rfeat} in {rregion} starting {quarter}."],
        "details": ["Region list maintained by Ops in Spanner.", "No further context in the PRD.",
                    "Requested in a leadership review.", "BB unchanged elsewhere."],
        "reasons": ["The artifact geo-restricts a feature without stating why; it could be legal (e.g. a local law) "
                    "or a business choice. Needs clarification from the owner."],
    },
    {
        "weight": 4, "verdict": "uncertain", "regs": [REG["gdpr"] + " (possibly)"], "regions": ["EU"],
        "domain": "privacy",
        "titles": ["Shorter DRT for EU message metadata ({cn})", "EU-only retention change for DM metadata"],
        "cores": ["Lower DRT for message metadata to {retention} days for EU users only."],
        "details": ["Motivation listed as 'storage + LCP alignment'.", "Deletion job runs weekly.",
                    "Other regions keep the current DRT."],
        "reasons": ["An EU-only retention change could implement GDPR storage limitation, but the stated reason mixes "
                    "cost and an unnamed LCP. Confirm with legal."],
    },
    {
        "weight": 4, "verdict": "uncertain", "regs": [], "regions": [], "domain": "minor_safety",
        "titles": ["Age-gated {afeat} in selected markets", "{cn}: raise {afeat} age to {age}"],
        "cores": ["Raise the minimum age for {afeat} to {age} in a handful of markets (list TBD with Policy)."],
        "details": ["ASL provides the age signal.", "BB unchanged elsewhere.", "Target launch {quarter}."],
        "reasons": ["Age-gating by market hints at minor-safety laws, but neither the markets nor the reason are "
                    "specified. Cannot determine without the market list."],
    },
    {
        "weight": 3, "verdict": "uncertain", "regs": [], "regions": ["{ecountry}"], "domain": "ads",
        "titles": ["Election-period political ads pause in {ecountry}", "{cn}: political ads blackout ({ecountry})"],
        "cores": ["Softblock new political ads in {ecountry} during the election blackout window."],
        "details": ["Trust & Safety request; legal basis not documented.", "Existing campaigns keep running.",
                    "Window length: {days} days."],
        "reasons": ["Could be required by {ecountry}'s election rules or be a voluntary policy decision; the artifact "
                    "does not say which."],
    },
    {
        "weight": 4, "verdict": "uncertain", "regs": [], "regions": ["{lcountry}"], "domain": "privacy",
        "titles": ["Disable precise location sharing in {lcountry}", "{cn}: location geofence ({lcountry})"],
        "cores": ["GH-based geofence disables precise location sharing for users in {lcountry}."],
        "details": ["Requested by the regional team.", "Ticket references 'LCP review pending'.",
                    "Approximate location still works."],
        "reasons": ["A region-specific restriction with a pending LCP review suggests possible legal drivers, but "
                    "none is identified yet."],
    },
]


def geo_slots(r: random.Random) -> dict[str, Any]:
    cn = r.choice(CODENAMES)
    countries = r.sample(GEO_COUNTRIES, 3)
    ux = r.choice(UX_CHANGES)
    event = r.choice(SEASONAL)
    return {
        "cn": cn, "team": r.choice(TEAMS), "quarter": f"{r.choice(QUARTERS)} {r.choice([2025, 2026])}",
        "days": r.choice([7, 10, 14, 21, 30, 45]), "ver": r.randint(2, 5),
        "flag": f"{cn.lower()}_{r.choice(['gate', 'rollout', 'enforce', 'v2', 'ramp'])}_{r.randint(1, 9)}",
        "pct": r.choice([1, 5, 10, 15, 20, 25, 50]), "country": countries[0], "country2": countries[1],
        "country3": countries[2], "mfeat": r.choice(MARKET_FEATURES), "ux_title": ux[0], "ux_desc": ux[1],
        "city": r.choice(["Sao Paulo", "Jakarta", "Lagos", "Warsaw", "Manila", "Bogota"]),
        "event": event[0], "event_region": event[1],
        "lang": r.choice(["Tagalog", "Swahili", "Ukrainian", "Bengali", "Catalan", "Tamil", "Yoruba", "Khmer"]),
        "rfeat": r.choice(RESTRICTABLE),
        "rregion": r.choice(["select regions", "certain markets", "a few US states", "parts of the EU", "APAC markets",
                             "two LATAM countries"]),
        "retention": r.choice([30, 60, 90, 180]), "age": r.choice([16, 18]),
        "afeat": r.choice(["live streaming", "tipping", "DMs with non-followers", "marketplace selling", "gifting"]),
        "ecountry": r.choice(["India", "Brazil", "the Philippines", "Mexico", "Indonesia"]),
        "lcountry": r.choice(["South Korea", "Turkey", "UAE", "Vietnam", "Egypt"]),
    }


def geo_verdict_json(verdict: bool | str, regs: list[str], regions: list[str], reasoning: str) -> str:
    return json.dumps({"needs_geo_compliance": verdict, "regulations": regs, "regions": regions,
                       "reasoning": reasoning}, ensure_ascii=False)


def geo_example(rng: random.Random) -> Record:
    specs = [sp for sp in GEO_SPECS for _ in range(sp["weight"])]
    spec = rng.choice(specs)
    s = geo_slots(rng)
    title = rng.choice(spec["titles"]).format(**s)
    sentences = [rng.choice(spec["cores"])]
    details = rng.sample(spec["details"], rng.randint(1, min(3, len(spec["details"]))))
    sentences += details
    sentences += rng.sample(NEUTRAL_EXTRAS, rng.choice([0, 1, 1, 2]))
    desc = " ".join(x.format(**s) for x in sentences)
    if rng.random() < 0.2:
        desc += " Glossary: " + "; ".join(rng.sample(GLOSSARY_NOTES, 3)) + "."
    layout = rng.randrange(4)
    if layout == 0:
        inp = f"Feature title: {title}\nFeature description: {desc}"
    elif layout == 1:
        inp = f"Title: {title}\n\nDescription:\n{desc}"
    elif layout == 2:
        inp = f"[{s['team']}] {title}\n{desc}"
    else:
        inp = f"{title}\n- " + "\n- ".join(x.format(**s) for x in sentences)
    rec: Record = {
        "instruction": rng.choice(GEO_INSTRUCTIONS), "input": inp,
        "output": geo_verdict_json(spec["verdict"], [x.format(**s) for x in spec["regs"]],
                                   [x.format(**s) for x in spec["regions"]], rng.choice(spec["reasons"]).format(**s)),
    }
    if rng.random() < 0.85:
        rec["metadata"] = {"feature_id": "", "domain": spec["domain"]}
    return rec


def build_geo_base(rng: random.Random, count: int) -> list[Record]:
    ids = rng.sample(range(1000, 9999), count)
    records = unique_records(rng, count, geo_example, "alpaca")
    for k, rec in enumerate(records):
        if "metadata" in rec:
            rec["metadata"]["feature_id"] = f"FEAT-{ids[k]}"
    return records


# ---------------------------------------------------------------------------------------------------
# Dataset 3: stylist feedback summaries (Bedrock Nova format)
# ---------------------------------------------------------------------------------------------------

NOVA_SCHEMA = "bedrock-conversation-2024"
STYLIST_SYSTEMS = [
    "You summarise salon client feedback for the stylist. Reply with JSON only: {\"headline\": string, "
    "\"pinch_points\": [string, ...], \"sentiment\": \"positive\" | \"mixed\" | \"negative\"}. Pinch points are "
    "short, concrete, actionable issues; use an empty list if there are none.",
    "Read the client's post-appointment feedback and return a JSON object with a one-line headline, a list of "
    "pinch_points (specific things that went wrong, empty if none) and an overall sentiment of positive, mixed or "
    "negative. No text outside the JSON.",
]

STYLISTS = ["Maya", "Jordan", "Priya", "Luis", "Tasha", "Ken", "Bianca", "Omar", "Sofia", "Dre", "Hannah", "Mei",
            "Carlos", "Aisha", "Nina", "Rob", "Camille", "Tyler", "Yuki", "Gabriela"]
SERVICES = [  # (name, category)
    ("balayage", "color"), ("full highlights", "color"), ("root touch-up", "color"), ("color correction", "color"),
    ("toner refresh", "color"), ("women's haircut", "cut"), ("men's fade", "barber"), ("beard trim", "barber"),
    ("curtain bangs trim", "cut"), ("kids' cut", "cut"), ("pixie cut", "cut"), ("blowout", "style"),
    ("silk press", "style"), ("bridal updo", "style"), ("keratin treatment", "treatment"), ("perm", "treatment"),
    ("scalp treatment", "treatment"), ("knotless braids", "braids"), ("box braids", "braids"),
    ("gel manicure", "nails"), ("pedicure", "nails"), ("acrylic fill", "nails"), ("lash extensions", "lashext"),
    ("lash lift", "lashlift"), ("brow lamination", "brows"),
]
WASH_CATS = ["color", "cut", "style", "treatment"]
HAIR_CATS = ["color", "cut", "barber", "style", "treatment", "braids"]
BEAUTY_CATS = ["nails", "lashext", "lashlift", "brows"]
# (user phrase, headline noun phrase, categories ([] = any), conflict tag)
POSITIVES: list[tuple[str, str, list[str], str]] = [
    ("{s} really listened to what I wanted", "attentive listening", [], "consult"),
    ("{s} explained every step before doing it", "clear explanations", [], "consult"),
    ("the salon was spotless and calm", "clean, calm salon", [], "calm"),
    ("we finished right on time", "on-time finish", [], "time"),
    ("best head massage ever during the wash", "great wash and massage", WASH_CATS, "wash"),
    ("{s} was so friendly, I felt totally relaxed", "friendly, relaxing visit", [], ""),
    ("got really useful tips for styling it at home", "helpful at-home tips", HAIR_CATS, ""),
    ("got really useful aftercare tips", "helpful aftercare tips", BEAUTY_CATS, ""),
    ("the price was exactly what they quoted", "price as quoted", [], "price"),
    ("{s} was honest that I needed a trim first and it was the right call", "honest advice",
     ["color", "style", "treatment"], ""),
    ("{s} talked me out of a shape that wouldn't have suited me", "honest advice", ["nails", "lashext", "brows", "cut"], ""),
    ("the color is exactly the soft caramel from my photo", "spot-on color match", ["color"], "color"),
    ("it blended perfectly, no harsh line at the roots", "seamless blend", ["color"], "color"),
    ("the toner got rid of all the brassiness", "brass-free toning", ["color"], "color"),
    ("my gray coverage is perfect", "full gray coverage", ["color"], ""),
    ("the layers frame my face perfectly", "flattering layers", ["cut"], "cut"),
    ("the fade is super clean and even", "clean fade", ["barber"], "cut"),
    ("it's growing out nicely even three weeks later", "a cut that grows out well", ["cut", "barber"], "cut"),
    ("my hair is so shiny and smooth", "shiny, smooth finish", ["style", "treatment"], ""),
    ("the updo held all night through the dancing", "long-lasting updo", ["style"], "hold"),
    ("zero frizz even in this humidity", "frizz-free result", ["treatment", "style"], "hold"),
    ("braids are neat and the parts are perfectly straight", "neat, even braids", ["braids"], ""),
    ("shape is perfect and no chips after a week", "long-lasting polish", ["nails"], "polish"),
    ("the lashes look natural and feel weightless", "natural-looking lashes", ["lashext", "lashlift"], "lash"),
    ("my brows look fuller but still like me", "natural brow result", ["brows"], ""),
]
# (user phrases, pinch point, categories ([] = any), conflict tag)
NEGATIVES: list[tuple[list[str], str, list[str], str]] = [
    (["I waited {n} minutes past my appointment time", "they started {n} min late and nobody said sorry"],
     "Started {n} minutes late", [], "time"),
    (["the final bill was ${x} more than the quote", "got charged ${x} over what I was quoted with no explanation"],
     "Charged ${x} more than quoted", [], "price"),
    (["the color came out way brassier than my reference photo", "it's more orange than the caramel I asked for"],
     "Color warmer/brassier than reference", ["color"], "color"),
    (["{s} took off about {k} inches when I asked for one", "way more length gone than I asked for, like {k} inches"],
     "Cut ~{k} inches shorter than requested", ["cut"], "cut"),
    (["the blow-dry at the end felt rushed", "felt rushed at the end, styling took five minutes"],
     "Rushed finish", WASH_CATS, ""),
    (["the last part felt rushed", "felt rushed at the end, like there was another client waiting"], "Rushed finish",
     BEAUTY_CATS + ["braids", "barber"], ""),
    (["{s} was on their phone between steps", "stylist kept texting during my appointment"],
     "Stylist on phone during service", [], ""),
    (["kept pushing a $48 shampoo on me", "the product upsell was nonstop"], "Pushy product upsell", [], ""),
    (["the rinse water was scalding", "water was way too hot at the sink"], "Rinse water too hot", WASH_CATS, "wash"),
    (["my scalp was burning from the lightener and nobody checked on me", "scalp stung the whole processing time"],
     "Scalp discomfort not checked during lightening", ["color"], ""),
    (["the layers are uneven on the left side", "one side is noticeably longer than the other"],
     "Uneven cut (one side longer)", ["cut", "barber"], "cut"),
    (["the booking app double-booked me", "online booking showed the wrong time"], "Booking system error", [], ""),
    (["no parking info anywhere, I circled for 15 minutes", "couldn't find parking and nobody told me where to go"],
     "No parking/arrival guidance", [], ""),
    (["polish started chipping after two days", "two nails chipped by day three"], "Polish chipped within days",
     ["nails"], "polish"),
    (["the glue stung my eyes", "my eyes were watering from the adhesive"], "Eye irritation from adhesive",
     ["lashext", "lashlift"], ""),
    (["a few lashes fell out the first day", "lost several extensions within 48 hours"], "Extensions shedding early",
     ["lashext"], "lash"),
    (["the salon was freezing", "it was so cold I kept my coat on"], "Salon too cold", [], ""),
    (["there was no consultation at all, they just got started", "nobody asked what I wanted before starting"],
     "No consultation before starting", [], "consult"),
    (["music was so loud I couldn't explain what I wanted", "too loud to even talk"], "Music too loud to consult", [],
     "calm"),
    (["braids are way too tight, I had a headache for two days", "the tension gave me bumps along my edges"],
     "Braids too tight (tension/headache)", ["braids"], ""),
    (["the curls fell flat by the next morning", "style didn't hold even a day"], "Style didn't hold",
     ["style", "treatment"], "hold"),
    (["the chemical smell was overwhelming and there was no ventilation", "fumes made my eyes water"],
     "Strong fumes, poor ventilation", ["treatment"], ""),
]
OPENERS = {
    "positive": ["Absolutely love my {svc}!", "Second visit with {s} and nailed it again.", "So happy with my {svc}.",
                 "10/10 {svc} today.", "wow. just wow.", "Quick note to say thanks for the {svc}."],
    "mixed": ["Mostly happy with my {svc}, but a couple of things.", "The {svc} looks good, the experience less so.",
              "Mixed feelings about today's {svc}.", "Result is nice overall.", "ok so the {svc} is fine overall."],
    "negative": ["Really disappointed with my {svc} today.", "Not happy.", "I don't usually leave reviews but",
                 "Honestly the worst {svc} I've had.", "Feedback on my {svc} with {s}:"],
}
CLOSERS = {
    "positive": ["Already booked my next one!", "Will be back.", "Telling all my friends.", "5 stars.", "",
                 "Thank you {s}!"],
    "mixed": ["Would probably rebook, but please fix this.", "3.5/5.", "I'll give it another try.", "",
              "Still like {s} though."],
    "negative": ["Won't be back.", "1 star.", "Want a partial refund.", "Pretty upset tbh.", "",
                 "Please call me about this."],
}
HEADLINES = {
    "positive": ["{S} nailed the {svc}: {pos}", "Happy client after {svc}: {pos}", "{svc_c} praised for {pos}",
                 "Glowing review for {s}: {pos}"],
    "mixed": ["{svc_c} result liked, but {neg}", "Good {svc} with {s}, marred by: {neg}", "Mixed {svc} visit: {pos}, "
              "but {neg}", "Client liked the {pos}; {neg} hurt the visit"],
    "negative": ["Unhappy {svc} client: {neg}", "{svc_c} fell short: {neg}", "Negative visit with {s}: {neg}",
                 "Client dissatisfied; main issue: {neg}"],
}


def _applies(cats: list[str], cat: str) -> bool:
    return not cats or cat in cats


def stylist_example(rng: random.Random) -> tuple[str, dict[str, Any]]:
    stylist = rng.choice(STYLISTS)
    svc, cat = rng.choice(SERVICES)
    sentiment = rng.choices(["positive", "mixed", "negative"], weights=[40, 35, 25])[0]
    pos_pool = [p for p in POSITIVES if _applies(p[2], cat)]
    neg_pool = [ng for ng in NEGATIVES if _applies(ng[2], cat)]
    n_pos = {"positive": rng.randint(1, 3), "mixed": rng.randint(1, 2), "negative": rng.choice([0, 0, 1])}[sentiment]
    n_neg = {"positive": 0, "mixed": rng.randint(1, 2), "negative": rng.randint(1, 3)}[sentiment]
    neg = rng.sample(neg_pool, n_neg)
    clash = [ng[3] for ng in neg if ng[3]]
    pos = rng.sample([p for p in pos_pool if p[3] not in clash], n_pos)
    vals = {"n": rng.choice([15, 20, 25, 30, 40, 45]), "x": rng.choice([20, 25, 35, 40, 60, 85]),
            "k": rng.choice([2, 3, 4]), "s": stylist}
    pos_phr = [p[0].format(**vals) for p in pos]
    neg_phr = [rng.choice(ng[0]).format(**vals) for ng in neg]
    pinch = [ng[1].format(**vals) for ng in neg]
    if sentiment == "negative" and pos_phr:
        pos_phr = [f"to be fair {pos_phr[0]}"]
    sentences = pos_phr + neg_phr if sentiment != "negative" else neg_phr + pos_phr
    tone = rng.choice(["normal", "normal", "excited", "terse", "lower", "long"])
    opener = rng.choice(OPENERS[sentiment]).format(svc=svc, s=stylist)
    closer = rng.choice(CLOSERS[sentiment]).format(s=stylist)
    if tone == "terse":
        body = ". ".join(x[0].upper() + x[1:] for x in sentences) + "."
        text = f"{svc.capitalize()} w/ {stylist}. {body} {closer}".strip()
    else:
        body_parts = []
        for i, x in enumerate(sentences):
            x = x[0].upper() + x[1:]
            if i > 0 and sentiment == "mixed" and i == len(pos_phr):
                x = rng.choice(["But ", "However, ", "Only thing: ", "On the other hand "]) + x[0].lower() + x[1:]
            body_parts.append(x + ("!" if tone == "excited" and sentiment == "positive" else "."))
        if opener.endswith("but") and body_parts:
            body_parts[0] = body_parts[0][0].lower() + body_parts[0][1:]
        text = f"{opener} " + " ".join(body_parts)
        if tone == "long":
            text += rng.choice([f" I've been going to this salon for {rng.randint(2, 6)} years so this matters to me.",
                                f" It was for my {rng.choice(['birthday', 'sister', 'work event', 'anniversary'])}.",
                                " I drove 40 minutes to get there."])
        text = (text + " " + closer).strip()
        if tone == "lower":
            text = text.lower()
    if rng.random() < 0.3:
        day = rng.choice(["Saturday", "Tuesday", "Friday", "Sunday", "Wednesday"])
        text = rng.choice([f"Feedback for {stylist} ({svc}, {day}):\n{text}",
                           f"Client survey response - service: {svc}, stylist: {stylist}\n\n{text}"])
    fill = {"s": stylist, "S": stylist, "svc": svc, "svc_c": svc[0].upper() + svc[1:],
            "pos": pos[0][1] if pos else "", "neg": pinch[0].lower() if pinch else ""}
    headline = rng.choice(HEADLINES[sentiment]).format(**fill)
    return text, {"headline": headline, "pinch_points": pinch, "sentiment": sentiment}


def nova_record(system: str, user: str, answer: str) -> Record:
    return {"schemaVersion": NOVA_SCHEMA, "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": user}]},
                         {"role": "assistant", "content": [{"text": answer}]}]}


def build_stylist_base(rng: random.Random, count: int) -> list[Record]:
    def make(r: random.Random) -> Record:
        text, ans = stylist_example(r)
        return nova_record(r.choice(STYLIST_SYSTEMS), text, json.dumps(ans, ensure_ascii=False))

    return unique_records(rng, count, make, "nova")


# ---------------------------------------------------------------------------------------------------
# Deliberate defects
# ---------------------------------------------------------------------------------------------------

EMAILS = ["dana.whitfield@example.com", "ops-planning@northwind.example", "j.okafor@example.org",
          "priya.nair@example.net", "kayla.r+salon@example.com", "m.tanaka@example.com", "alex.g@example.org"]
PHONES = ["(415) 555-0134", "+1 212 555 0199", "(646) 555-0172", "+1 312-555-0148"]
CARD = "4111 1111 1111 1111"
SSN = "123-45-6789"
IPS = ["203.0.113.42", "10.20.30.41", "198.51.100.23"]
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SK_KEY = "sk-proj-4fT9kQ2mX7vLp3nR8sW1yZ6bH0cJ5dE2gA9uK4oN"

# Per dataset: the sentence templates that carry each kind of PII or bait into the user text.
PII_SENTENCES = {
    "opt": {
        "email": ["Please send the formulation to {email} when you're done.", "Questions can go to our planner, {email}."],
        "phone": ["If anything is unclear call me on {phone}.", "(My direct line is {phone} if that's easier.)"],
        "card": ["We'd pay for a solver licence on the company card {card} if needed."],
        "ssn": ["Note: the export I copied this from also had an employee SSN column (first row {ssn}), please "
                "ignore it."],
        "ip": ["The demand numbers come from our MES server at {ip}.", "Data is on the planning box ({ip})."],
        "aws": ["Our notebook pulls the data from S3 with access key {aws}, in case that matters."],
        "sk": ["I tried this with a script using key {sk} but it went nowhere."],
    },
    "geo": {
        "email": ["Owner contact: {email}.", "Questions to {email} before FR."],
        "phone": ["Escalation on-call: {phone}.", "PM reachable at {phone} during the ramp."],
        "card": ["QA uses test card {card} for the checkout path."],
        "ssn": ["Sample fixture row includes SSN {ssn} (synthetic)."],
        "ip": ["Geo-IP test traffic originates from {ip}.", "Staging endpoint pinned to {ip}."],
        "aws": ["Config snippet: aws_access_key_id={aws}."],
        "sk": ["The LLM-based CDS classifier calls the API with key {sk}."],
    },
    "sty": {
        "email": ["You can reach me at {email}.", "Email me back: {email}"],
        "phone": ["Call me at {phone}.", "my number is {phone} if the manager wants to talk"],
        "card": ["Also they charged my card {card} twice!!"],
        "ssn": ["And why did the intake form ask for my SSN? I wrote {ssn} before I thought about it.",
                "The new-client form wanted an SSN (I put {ssn}), which seems like a lot for a salon."],
        "ip": ["The booking page kept saying 'request blocked from {ip}'."],
        "aws": ["The confirmation text had a weird link with {aws} in it."],
        "sk": ["Their booking chatbot glitched and printed {sk} at me lol."],
    },
}
PII_COUNTS = {"email": 6, "phone": 4, "card": 2, "ssn": 2, "ip": 2, "aws": 1, "sk": 1}

BAIT = {
    "opt": {
        "damn": ["The damn spreadsheet keeps crashing, so I need a proper model.",
                 "We've been doing this by hand and it's a damn mess."],
        "competitor": ["ChatGPT gave me a model without the capacity constraints, so I'm asking again.",
                       "We compared quotes from Gemini and Copilot but neither explained the constraints."],
    },
    "geo": {
        "damn": ["This damn flag has been stuck in ShadowMode for weeks.", "PM note: damn, legal needs this by Friday."],
        "competitor": ["Parity with Snapchat's version of this.", "Instagram already ships something similar.",
                       "YouTube launched the same thing last quarter."],
    },
    "sty": {
        "damn": ["Damn good work honestly.", "damn it, this is the second time.", "Took a damn long time though."],
        "competitor": ["Way better than Supercuts.", "Honestly Drybar does it better for less.",
                       "Great Clips would've done the same for half."],
    },
}


def user_text(rec: Record, fmt: str) -> str:
    if fmt == "claude":
        return rec["messages"][0]["content"]
    if fmt == "alpaca":
        return rec["input"]
    return rec["messages"][0]["content"][0]["text"]


def set_user_text(rec: Record, fmt: str, text: str) -> None:
    if fmt == "claude":
        rec["messages"][0]["content"] = text
    elif fmt == "alpaca":
        rec["input"] = text
    else:
        rec["messages"][0]["content"][0]["text"] = text


def append_user(rec: Record, fmt: str, sentence: str) -> None:
    text = user_text(rec, fmt)
    sep = "\n\n" if fmt == "claude" and "\n" in text else " "
    set_user_text(rec, fmt, text + sep + sentence)


def ai_language_model(rec: Record, fmt: str) -> None:
    """Make the assistant answer open with the tell-tale phrase."""
    if fmt == "claude":
        rec["messages"][1]["content"] = ("As an AI language model, I can't see your systems or data, but based on "
                                         "the numbers you gave here is a formulation. " + rec["messages"][1]["content"])
    elif fmt == "alpaca":
        out = json.loads(rec["output"])
        out["reasoning"] = "As an AI language model, I cannot give legal advice. " + out["reasoning"]
        rec["output"] = json.dumps(out, ensure_ascii=False)
    else:
        msg = rec["messages"][1]["content"][0]
        out = json.loads(msg["text"])
        out["headline"] = "As an AI language model, I can't see the result, but: " + out["headline"]
        msg["text"] = json.dumps(out, ensure_ascii=False)


def damn_assistant(rec: Record, fmt: str) -> None:
    """Profanity-lite inside the assistant turn (guardrail rules often only scan assistant text)."""
    if fmt == "claude":
        rec["messages"][1]["content"] = "This one looks damn fiddly, but it models cleanly. " + rec["messages"][1]["content"]
    elif fmt == "alpaca":
        out = json.loads(rec["output"])
        out["reasoning"] = "Damn, this one is clear-cut. " + out["reasoning"]
        rec["output"] = json.dumps(out, ensure_ascii=False)
    else:
        msg = rec["messages"][1]["content"][0]
        out = json.loads(msg["text"])
        out["headline"] = "Damn: " + out["headline"]
        msg["text"] = json.dumps(out, ensure_ascii=False)


SYNONYMS = [("maximise", "maximize"), ("minimise", "minimize"), (" want ", " would like "), (" need ", " require "),
            (" each ", " every "), ("really", "truly"), (" users ", " accounts "), (" cost ", " expense "),
            (" happy ", " pleased "), (" feature ", " capability "), (" the ", " our ")]


def near_duplicate(rec: Record, fmt: str, kind: str) -> Record:
    dup = copy.deepcopy(rec)
    text = user_text(dup, fmt)
    if kind == "whitespace":
        new = "  " + text.replace(". ", ".  ", 3).replace("\n", "\n\n", 1) + " \n"
    elif kind == "case":
        new = text.lower() if text != text.lower() else text.upper()
    elif kind == "punct":
        new = text.replace(",", "").replace("?", "").replace("!", ".").rstrip(".") + "..."
    else:
        new = text
        for a, b in SYNONYMS:
            if a in text:
                new = text.replace(a, b, 1)
                break
    if new == text:
        new = text + "  "
    set_user_text(dup, fmt, new)
    return dup


def inject_defects(rng: random.Random, records: list[Record], fmt: str, key: str,
                   extra: dict[str, Callable[[Record], None]] | None = None) -> tuple[list[Record], dict[str, int]]:
    """Mutate distinct random base records in place, then add near and exact duplicates. Returns the shuffled file."""
    tally: dict[str, int] = {}
    order = list(range(len(records)))
    rng.shuffle(order)
    cursor = 0

    def take() -> Record:
        nonlocal cursor
        rec = records[order[cursor]]
        cursor += 1
        return rec

    values = {"email": EMAILS, "phone": PHONES, "card": [CARD], "ssn": [SSN], "ip": IPS, "aws": [AWS_KEY], "sk": [SK_KEY]}
    for kind, count in PII_COUNTS.items():
        for i in range(count):
            value = values[kind][i % len(values[kind])]
            sentence = rng.choice(PII_SENTENCES[key][kind]).format(**{kind: value})
            append_user(take(), fmt, sentence)
            tally[f"pii_{kind}"] = tally.get(f"pii_{kind}", 0) + 1
    for kind in ("damn", "competitor"):
        for _ in range(3 if kind == "damn" else 3):
            append_user(take(), fmt, rng.choice(BAIT[key][kind]))
            tally[f"bait_{kind}"] = tally.get(f"bait_{kind}", 0) + 1
    damn_assistant(take(), fmt)
    tally["bait_damn_in_assistant"] = 1
    for _ in range(3 if fmt == "claude" else 2):
        ai_language_model(take(), fmt)
        tally["bait_as_an_ai_language_model"] = tally.get("bait_as_an_ai_language_model", 0) + 1
    for name, fn in (extra or {}).items():
        fn(take())
        tally[name] = tally.get(name, 0) + 1

    originals = [records[order[j]] for j in range(cursor, cursor + 11)]
    kinds = ["whitespace", "case", "punct", "word"] * 2
    near = [near_duplicate(originals[j], fmt, kinds[j]) for j in range(8)]
    exact = [copy.deepcopy(originals[8 + j]) for j in range(3)]
    tally["near_duplicates"] = len(near)
    tally["exact_duplicates"] = len(exact)
    out = records + near + exact
    rng.shuffle(out)
    return out, tally


# ---------------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------------


def build_opt(seed: int) -> tuple[list[Record], dict[str, int]]:
    rng = random.Random(seed * 3 + 1)
    records = build_opt_base(rng, 240)

    def bait_returns(rec: Record) -> None:
        prob = opt_portfolio(rng, bait=True)
        answer, _ = render_opt(rng, prob)
        rec["messages"] = [{"role": "user", "content": prob.user}, {"role": "assistant", "content": answer}]

    def empty_system(rec: Record) -> None:
        rec["system"] = ""

    out, tally = inject_defects(rng, records, "claude", "opt", {
        "bait_guaranteed_returns": bait_returns, "bait_guaranteed_returns_2": bait_returns,
        "empty_system": empty_system})
    tally["bait_guaranteed_returns"] += tally.pop("bait_guaranteed_returns_2")
    tally["multi_turn"] = sum(1 for r in out if len(r["messages"]) > 2)
    return out, tally


def build_geo(seed: int) -> tuple[list[Record], dict[str, int]]:
    rng = random.Random(seed * 3 + 2)
    records = build_geo_base(rng, 245)

    def bait_returns(rec: Record) -> None:
        rec["input"] += (" Growth pitch deck promises creators 'guaranteed returns' on boosted posts in the "
                         "launch markets.")

    out, tally = inject_defects(rng, records, "alpaca", "geo", {
        "bait_guaranteed_returns": bait_returns, "bait_guaranteed_returns_2": bait_returns})
    tally["bait_guaranteed_returns"] += tally.pop("bait_guaranteed_returns_2")
    return out, tally


def build_stylist(seed: int) -> tuple[list[Record], dict[str, int]]:
    rng = random.Random(seed * 3 + 3)
    records = build_stylist_base(rng, 250)

    def reserved_user(rec: Record) -> None:
        text = user_text(rec, "nova")
        set_user_text(rec, "nova", "User: dana_k (verified client)\nService feedback:\n" + text)

    def reserved_assistant(rec: Record) -> None:
        text = user_text(rec, "nova")
        set_user_text(rec, "nova", text + " The salon chat widget replied 'Assistant: your appointment is "
                      "confirmed' and then nothing.")

    def bait_guaranteed(rec: Record) -> None:
        append_user(rec, "nova", "The front desk said the results were guaranteed, 'guaranteed returns or your "
                    "money back', but good luck getting that.")

    out, tally = inject_defects(rng, records, "nova", "sty", {
        "nova_reserved_token_user": reserved_user, "nova_reserved_token_assistant": reserved_assistant,
        "bait_guaranteed_returns": bait_guaranteed, "bait_guaranteed_returns_2": bait_guaranteed})
    tally["bait_guaranteed_returns"] += tally.pop("bait_guaranteed_returns_2")
    return out, tally


def write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def generate(out_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, dict[str, int]]:
    """Write the three files into ``out_dir``; return per-file counts of lines and deliberate defects."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, int]] = {}
    for name, builder in ((OPT_FILE, build_opt), (GEO_FILE, build_geo), (STYLIST_FILE, build_stylist)):
        records, tally = builder(seed)
        write_jsonl(out_dir / name, records)
        summary[name] = {"lines": len(records), **dict(sorted(tally.items()))}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    summary = generate(args.out, args.seed)
    for name, counts in summary.items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if k != "lines")
        print(f"{args.out / name}: {counts['lines']} lines ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
