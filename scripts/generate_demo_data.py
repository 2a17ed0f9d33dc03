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
* Guardrail bait: "damn" (3), competitor names (3), "guaranteed returns"/"guaranteed results" wording (2),
  and assistant answers that open with "As an AI language model" (2-3).
* Format-specific: one Claude example whose ``system`` is the empty string; two Nova examples whose
  user text contains reserved tokens ("User:", "Assistant:"), which fail a Nova fine-tuning job.
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


def slug(text: str) -> str:
    word = re.sub(r"[^a-z0-9]", "", text.lower().split()[-1])
    return word or "v"


def var_names(rng: random.Random, labels: list[str], letter: str = "x") -> list[str]:
    """Either descriptive names (x_tables) or indexed ones (x1, x2, ...)."""
    if rng.random() < 0.5:
        return [f"{letter}{i + 1}" for i in range(len(labels))]
    names: list[str] = []
    for lab in labels:
        base = f"{letter}_{slug(lab)}"
        name = base
        k = 2
        while name in names:
            name = f"{base}{k}"
            k += 1
        names.append(name)
    return names


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


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
        "unit": "unit", "period": "week", "integer": True, "profit": (35, 190),
        "products": ["dining tables", "chairs", "bookcases", "desks", "TV stands", "bed frames"],
        "resources": [("carpentry hours", "h", 1, 7, 1), ("finishing hours", "h", 0.5, 3, 1),
                      ("lumber", "board-feet", 6, 45, 0)],
    },
    {
        "what": "wholesale bakery", "companies": ["Redwood Bakery Co.", "Golden Crust Bakers", "Rise & Shine Breads"],
        "unit": "tray", "period": "day", "integer": False, "profit": (6, 28),
        "products": ["sourdough loaves", "baguettes", "croissants", "muffins", "bagels", "cinnamon rolls"],
        "resources": [("oven time", "minutes", 8, 35, 0), ("baker labour", "minutes", 5, 25, 0),
                      ("flour", "kg", 1.5, 6, 1)],
    },
    {
        "what": "electronics assembler", "companies": ["Lumen Electronics", "Quartzline Devices", "NetForge Hardware"],
        "unit": "unit", "period": "week", "integer": True, "profit": (12, 85),
        "products": ["Wi-Fi routers", "network switches", "cable modems", "mesh extenders", "smart plugs"],
        "resources": [("assembly time", "minutes", 4, 22, 0), ("test-bench time", "minutes", 2, 12, 0),
                      ("circuit boards", "boards", 1, 3, 0)],
    },
    {
        "what": "outdoor apparel maker", "companies": ["Granite Peak Outfitters", "Trailhead Apparel", "Northfork Gear"],
        "unit": "garment", "period": "week", "integer": True, "profit": (8, 55),
        "products": ["rain jackets", "fleece pullovers", "cargo trousers", "polo shirts", "hoodies"],
        "resources": [("cutting time", "minutes", 3, 14, 0), ("sewing time", "minutes", 10, 45, 0),
                      ("fabric", "m", 0.8, 3.0, 1)],
    },
    {
        "what": "paint manufacturer", "companies": ["Crescent Paints", "Bluestone Coatings", "Prairie Paint Works"],
        "unit": "batch of 100 L", "period": "week", "integer": False, "profit": (140, 520),
        "products": ["interior matte paint", "exterior gloss paint", "primer", "wood stain", "floor enamel"],
        "resources": [("mixing-tank time", "hours", 1, 5, 1), ("pigment", "kg", 4, 30, 0),
                      ("filling-line time", "hours", 0.5, 2.5, 1)],
    },
    {
        "what": "craft brewery", "companies": ["Oakridge Brewing", "Copper Kettle Brewing", "Two Rivers Brewhouse"],
        "unit": "barrel", "period": "month", "integer": False, "profit": (60, 210),
        "products": ["lager", "IPA", "stout", "hard seltzer", "pilsner"],
        "resources": [("brewhouse time", "hours", 0.6, 2.5, 1), ("fermenter capacity", "tank-days", 4, 21, 0),
                      ("malt", "kg", 10, 40, 0)],
    },
    {
        "what": "skincare brand with its own filling plant", "companies": ["Copperleaf Cosmetics", "Lumiere Skin Lab"],
        "unit": "case", "period": "week", "integer": True, "profit": (22, 95),
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
    unit, period = ind["unit"], ind["period"]
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
            needs = join_and([f"{num(usage[i][j])} {u} of {lab}" if u not in ("h", "hours", "minutes")
                              else f"{num(usage[i][j])} {u} of {lab}" for i, (lab, u, *_) in enumerate(res)])
            lines.append(f"{p.capitalize()}: {money(profit[j])} profit per {unit}, needs {needs}.")
        data = "\n".join(lines)
    avail = join_and([f"{caps[i]:,} {u} of {lab}" for i, (lab, u, *_) in enumerate(res)])

    extras_user: list[str] = []
    extras_cons: list[str] = []
    maxalone = [min(caps[i] / usage[i][j] for i in range(len(res))) for j in range(n)]
    for _ in range(rng.choice([0, 1, 1, 2])):
        kind = rng.choice(["min", "max", "ratio"])
        j = rng.randrange(n)
        if kind == "min":
            k = max(1, int(maxalone[j] * rng.uniform(0.05, 0.2)))
            extras_user.append(f"We have a standing order for at least {k} {unit}s of {prods[j]}.")
            extras_cons.append(f"Standing order: {names[j]} >= {k}")
        elif kind == "max":
            k = max(2, int(maxalone[j] * rng.uniform(0.3, 0.6)))
            extras_user.append(f"Sales says the market won't take more than {k} {unit}s of {prods[j]} this {period}.")
            extras_cons.append(f"Market limit: {names[j]} <= {k}")
        elif n >= 2:
            a, b = rng.sample(range(n), 2)
            extras_user.append(f"For the product range to look right we want at least as many {prods[a]} as {prods[b]}.")
            extras_cons.append(f"Mix rule: {names[a]} - {names[b]} >= 0")
    opener = rng.choice([
        f"I run operations at {company}, a {ind['what']}.",
        f"{company} is a {ind['what']} and we're trying to plan production for next {period}.",
        f"We're a small {ind['what']} ({company}).",
        f"Planning question from {company} ({ind['what']}).",
    ])
    user = (f"{opener} We make {n} products and want to maximise profit for the {period}.\n\n{data}\n\n"
            f"Available this {period}: {avail}.")
    if extras_user:
        user += " " + " ".join(extras_user)
    user += " " + rng.choice(ASKS)

    integer = ind["integer"]
    variables = [f"{names[j]} = number of {unit}s of {prods[j]} produced per {period}" for j in range(n)]
    objective = (f"Maximise total profit (in $ per {period}):\nmax Z = "
                 + lin([(profit[j], names[j]) for j in range(n)]))
    res_cons = [f"{lab.capitalize()}: " + lin([(usage[i][j], names[j]) for j in range(n)]) + f" <= {caps[i]}"
                for i, (lab, *_r) in enumerate(res)]
    nonneg = ", ".join(names) + " >= 0" + (" and integer" if integer else "")
    constraints = res_cons + extras_cons + [nonneg]
    if integer:
        ptype = (f"MILP (a pure integer program): the objective and constraints are linear, and {unit}s "
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
        cost = r.randint(15, 60)
        u2 = (f"Thanks! Two changes: we must make at least {k} {unit}s of {prods[j]} for a key customer, and we "
              f"could buy up to {extra_cap:,} extra {res[i][1]} of {res[i][0]} at ${cost} per {res[i][1].rstrip('s')}. "
              f"How does the model change?")
        e = "e_" + slug(res[i][0])
        full = [c for c in res_cons]
        full[i] = (f"{res[i][0].capitalize()}: " + lin([(usage[i][jj], names[jj]) for jj in range(n)])
                   + f" - {e} <= {caps[i]}")
        a2 = (f"Both fit into the same structure. The customer order is a lower bound, and the extra "
              f"{res[i][0]} becomes a new decision variable that adds capacity at a cost.\n\n"
              f"New variable:\n- {e} = extra {res[i][1]} of {res[i][0]} bought (0 to {extra_cap})\n\n"
              f"Revised objective:\nmax Z = " + lin([(profit[jj], names[jj]) for jj in range(n)])
              + f" - {cost} {e}\n\nRevised constraints:\n"
              + bullets(full + extras_cons + [f"Key customer: {names[j]} >= {k}", f"Purchase limit: {e} <= {extra_cap}",
                                             nonneg + f"; {e} >= 0"])
              + f"\n\nThe model is still {'a MILP' if integer else 'an LP'}. If {e} comes out at its upper "
              f"bound, the extra {res[i][0]} is worth more than ${cost} and it may pay to negotiate a bigger "
              f"allowance; if it is 0, the purchase isn't worth it at that price.")
        return u2, a2

    return Opt(user, reasoning, variables, objective, constraints, ptype, solve, followup)


# --- staff scheduling ---------------------------------------------------------------------------------

STAFF_BLOCK_CONTEXTS = [
    ("a 24/7 customer support center", "agents"), ("a hospital emergency department", "nurses"),
    ("a regional distribution center", "pickers"), ("an airport security checkpoint", "screeners"),
    ("a 24-hour pharmacy fulfillment hub", "pharmacy technicians"), ("a city 911 dispatch center", "dispatchers"),
]
STAFF_WEEK_CONTEXTS = [
    ("a busy downtown restaurant group", "servers", True), ("a big-box retail store", "sales associates", True),
    ("a mail sorting center", "clerks", False), ("a city bus depot", "drivers", False),
    ("a resort hotel", "housekeepers", True), ("a hospital laboratory", "lab technicians", False),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def opt_staff(rng: random.Random) -> Opt:
    company = rng.choice(GENERIC_COMPANIES)
    if rng.random() < 0.5:
        ctx, staff = rng.choice(STAFF_BLOCK_CONTEXTS)
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
        user = (f"{company} runs {ctx}. Staff work 8-hour shifts that can start at 00:00, 04:00, 08:00, 12:00, "
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

    ctx, staff, weekend_heavy = rng.choice(STAFF_WEEK_CONTEXTS)
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
        c2.append(f"Sunday parking cap: " + " + ".join(names[s] for s in sun) + f" <= {max(demand)}")
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

BLENDS: list[dict[str, Any]] = [
    {
        "ctx": "feed mill", "product": "poultry feed", "unit": "tonne", "attrs": ["protein", "fibre", "calcium"],
        "items": [("corn", 210, [8.5, 2.2, 0.02]), ("soybean meal", 420, [46, 6, 0.3]),
                  ("wheat middlings", 180, [16, 8, 0.12]), ("fish meal", 950, [62, 1, 5.0]),
                  ("limestone", 60, [0, 0, 38]), ("alfalfa meal", 260, [17, 24, 1.4]),
                  ("canola meal", 330, [36, 12, 0.65]), ("barley", 200, [11, 5, 0.05])],
        "companies": ["Pioneer Feed Mills", "Prairie Gold Feeds", "Heartland Nutrition"],
    },
    {
        "ctx": "foundry", "product": "alloy steel", "unit": "ton", "attrs": ["carbon", "chromium", "nickel"],
        "items": [("carbon steel scrap", 310, [0.4, 0.1, 0.05]), ("stainless scrap", 1150, [0.08, 18, 8]),
                  ("pig iron", 420, [4.2, 0.0, 0.0]), ("ferrochrome", 2100, [6.5, 62, 0.0]),
                  ("nickel briquettes", 14500, [0.02, 0.0, 99]), ("low-alloy returns", 520, [0.3, 1.2, 0.8])],
        "companies": ["Cobalt Metals", "Ironbridge Castings", "Great Lakes Foundry"],
    },
    {
        "ctx": "fruit-juice bottler", "product": "juice blend", "unit": "1,000 L", "attrs": ["sugar", "acidity", "vitamin C"],
        "items": [("apple juice concentrate", 640, [11, 0.5, 2]), ("orange juice", 910, [9, 0.9, 50]),
                  ("grape juice", 780, [16, 0.6, 1]), ("cranberry juice", 1250, [3, 2.4, 9]),
                  ("pear puree", 560, [10, 0.3, 4]), ("water", 5, [0, 0, 0])],
        "companies": ["Pacific Crest Beverages", "Orchard Lane Juice Co.", "Sunvale Dairy"],
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
    w = [rng.uniform(0.2, 1.0) for _ in items]
    tot = sum(w)
    w = [x / tot for x in w]
    attrs = spec["attrs"]
    mix = [sum(w[i] * items[i][2][a] for i in range(len(items))) for a in range(len(attrs))]
    lo = [round(max(0.0, m * rng.uniform(0.85, 0.95)), 2) for m in mix]
    hi = [round(m * rng.uniform(1.05, 1.2) + 0.01, 2) for m in mix]
    kinds = ["min", "max", "range"]
    kind = [rng.choice(kinds) for _ in attrs]
    names = var_names(rng, [it[0] for it in items])
    limited = rng.randrange(len(items))
    avail = round(batch * w[limited] * rng.uniform(1.1, 1.6), 1)
    u = spec["unit"]
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
    user = (f"{company} is a {spec['ctx']}. We need to blend {batch} {u}s of {spec['product']} at the lowest "
            f"cost. Spec: {join_and(spec_txt)}.\n\n{table}\n\nWe only have {num(avail)} {u}s of "
            f"{items[limited][0]} in stock. " + rng.choice(ASKS))
    variables = [f"{names[i]} = {u}s of {items[i][0]} in the batch" for i in range(len(items))]
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

GOODS = ["pallets of bottled water", "tonnes of cement", "cases of frozen vegetables", "bags of fertilizer",
         "solar panels", "cartons of paper towels", "drums of lubricant", "crates of apples"]


def opt_transport(rng: random.Random) -> Opt:
    company = rng.choice(GENERIC_COMPANIES)
    goods = rng.choice(GOODS)
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
                     [[src[i]] + [f"${num(cost[i][j])}" for j in range(n)] + [str(supply[i])] for i in range(m)]
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
    company = rng.choice(GENERIC_COMPANIES)
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
    cons = [f"Demand of region j: sum_i x_ij = d_j for every j (d = {', '.join(f'{d:,}' for d in demand)})"]
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
            a2 = (f"Add two rows; nothing else changes:\n\n- Project count: " + lin([(1, nm) for nm in names])
                  + f" <= {k}\n- Mandatory: y{d + 1} = 1\n\nThe objective and budget rows stay as they were"
                  + (", and so do the logical rules" if logic_cons else "")
                  + ". Still a 0-1 integer program. Check feasibility: if the mandatory project's cost plus "
                  "whatever the other rules force in exceeds the budget, the model becomes infeasible, which "
                  "is worth knowing before the board meeting.")
            return u2, a2

        return Opt(user, reasoning, variables, objective, cons, ptype, solve, followup)

    items = rng.sample(CARGO, rng.randint(5, 8))
    w = [max(1, round(it[1] * rng.uniform(0.8, 1.2))) for it in items]
    val = [round(it[2] * rng.uniform(0.8, 1.3)) for it in items]
    qty = [rng.randint(2, 12) for _ in items]
    capw = nice(sum(wi * q for wi, q in zip(w, qty, strict=True)) * rng.uniform(0.35, 0.55), 50)
    names = var_names(rng, [it[0] for it in items], "n")
    rows = [[it[0], f"{w[i]} kg", f"${val[i]:,}", str(qty[i])] for i, it in enumerate(items)]
    user = (f"Our service van at {company} can carry {capw:,} kg. Tomorrow's run is to a remote site and we want "
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
    company = rng.choice(GENERIC_COMPANIES)
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

LOT_PRODUCTS = ["custom printed labels", "injection-molded housings", "seasonal candles", "bottled cold brew",
                "spare pump impellers", "private-label granola", "powder-coated brackets", "enzyme cleaner"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def opt_lot_sizing(rng: random.Random) -> Opt:
    company = rng.choice(GENERIC_COMPANIES)
    prod = rng.choice(LOT_PRODUCTS)
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
    user = (f"At {company} we make {prod} in batches. Every {pname} we run the line costs {money(setup)} in setup "
            f"(changeover, cleaning, test run), and holding a unit in stock costs {money(hold)} per {pname}.{cap_txt} "
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
    records: list[Record] = []
    multi_left = round(count * 0.05)
    for _ in range(count):
        fn = rng.choice(pool)
        prob = fn(rng)
        answer, rel = render_opt(rng, prob)
        messages = [{"role": "user", "content": prob.user}, {"role": "assistant", "content": answer}]
        if prob.followup is not None and multi_left > 0 and rng.random() < 0.12:
            u2, a2 = prob.followup(rng)
            messages += [{"role": "user", "content": u2}, {"role": "assistant", "content": rel(a2)}]
            multi_left -= 1
        records.append({"system": rng.choice(OPT_SYSTEMS), "messages": messages})
    return records
