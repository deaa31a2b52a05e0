"""Tree-structured synthesizers of Synthex's own: MST (differentially private) and a Chow-Liu tree (not).

Pure: numpy, pandas and OpenDP; no Django. A model is a JSON document (``synthex.tree-model/v1``) of
probabilities, not code: it is loaded and sampled in the worker without a sandbox.

**MST** (McKenna, Miklau & Sheldon, "Winning the NIST Contest: A scalable and general approach to
differentially private synthetic data", JPC 2021), under zero-concentrated DP (Bun & Steinke 2016) with
add/remove-one-row neighbours, total budget ρ split in three equal parts:

1. every column's 1-way marginal (counts over its public domain, missing values included) with the discrete
   Gaussian mechanism (OpenDP ``make_gaussian``, L2 sensitivity 1 per marginal); values whose noisy count is
   below 3σ are merged into one bucket (post-processing);
2. ``d - 1`` rounds of the exponential mechanism (OpenDP ``make_noisy_max``, zCDP, sensitivity 1) over the
   L1 error of the independence estimate on each pair that joins two components: a maximum spanning tree;
3. the chosen pairs' 2-way marginals with the discrete Gaussian mechanism.

The estimate is then a tree-structured distribution (root marginal and one conditional per edge, negative
noisy counts clipped): post-processing, no further privacy cost. This replaces Private-PGM's inference,
which for a tree gives a consistent fit of all measurements at once; ours uses each measurement alone.
ρ comes from the provider's (ε, δ) through OpenDP's zCDP → (ε, δ) conversion (Canonne, Kamath & Steinke
2020), searched so that the composed ρ converts back to at most the requested ε at δ.

The **Chow-Liu** tree is the same model fitted without noise: exact marginals and the maximum spanning tree
of mutual information. It has no formal privacy guarantee; the certificate's empirical tests apply.

Column domains (categories, numeric bounds) are not measured privately: they are given by the provider or
taken from the data with the provider's declaration that they are public. Numeric columns are cut into
equal-width bins of the public range (an exact bin for zero when the range holds it); a sampled value is
uniform in its bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MODEL_FORMAT = "synthex.tree-model/v1"
NUMERIC_BINS = 48
MAX_INTEGER_CODES = 128
MAX_CATEGORIES = 1000
BATCH_ROWS = 100_000
MAX_EPSILON = 50.0
MIN_EPSILON = 0.01
ACCOUNTANT = "zCDP (Bun & Steinke 2016), converted to (ε, δ) by OpenDP (Canonne, Kamath & Steinke 2020)"
MECHANISM = "MST (McKenna, Miklau & Sheldon 2021): discrete Gaussian marginals, exponential-mechanism tree"
NEIGHBOURS = "add or remove one row"


class TreeModelError(ValueError):
    """A table or request the tree engines cannot take; ``code`` a slug, ``message`` a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ColumnDomain:
    """A column's public domain: categories (``values``) or bin edges of a numeric range (``edges``).

    Code ``len(values)`` (or the number of bins) is the missing value. ``source`` is ``provider`` when the
    provider sent the domain, ``data`` when it was read from the rows under the provider's declaration.
    """

    name: str
    kind: str  # categorical, numerical, datetime, id
    values: tuple[Any, ...] = ()
    edges: tuple[float, ...] = ()
    integer: bool = False
    source: str = "data"

    @property
    def size(self) -> int:
        """Codes including the missing one."""
        if self.kind == "id":
            return 1
        bins = len(self.values) if self.kind == "categorical" else len(self.edges) - 1
        return bins + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "values": list(self.values),
            "edges": list(self.edges),
            "integer": self.integer,
            "source": self.source,
        }


@dataclass(frozen=True)
class Accounting:
    """What a DP fit spent: ρ per step (as OpenDP's privacy maps state it) and the (ε, δ) it converts to."""

    epsilon_requested: float
    delta: float
    rho_total: float
    epsilon: float
    steps: tuple[dict[str, Any], ...] = field(default_factory=tuple)


# -- accounting -----------------------------------------------------------------------------------------------


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def opendp_version() -> str:
    from importlib.metadata import version

    return version("opendp")


def epsilon_for_rho(rho: float, delta: float) -> float:
    """The ε at which ``rho``-zCDP is (ε, ``delta``)-DP, by OpenDP's conversion of a Gaussian mechanism
    whose privacy map is exactly ``rho``."""
    dp = _opendp()
    gaussian = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.l2_distance(T=float),
        scale=1.0,
    )
    # A Gaussian of scale 1 and sensitivity s spends s²/2: choose s so that it spends rho.
    converted = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), delta)
    return float(converted.map(math.sqrt(2.0 * rho))[0])


def rho_for(epsilon: float, delta: float) -> float:
    """The largest ρ whose zCDP converts to at most (``epsilon``, ``delta``)-DP (bisection, 60 steps)."""
    low, high = 0.0, epsilon + 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if epsilon_for_rho(middle, delta) <= epsilon:
            low = middle
        else:
            high = middle
    return low


# -- domains and encoding -------------------------------------------------------------------------------------


def _numeric_edges(low: float, high: float, integer: bool) -> tuple[float, ...]:
    """Equal-width bins over [low, high] (integer columns with a short range: one bin per integer), with an
    exact bin for zero when the range holds it (zero is a common point mass: counts, amounts, gains)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise TreeModelError("bad_domain", "A numeric range needs finite bounds with low ≤ high.")
    if integer and high - low + 1 <= MAX_INTEGER_CODES:
        return tuple(float(v) - 0.5 for v in range(int(low), int(high) + 2))
    if high == low:
        return (low - 0.5, high + 0.5)
    edges = list(np.linspace(low, high, NUMERIC_BINS + 1))
    if low < 0 < high or low == 0 or high == 0:
        tiny = (high - low) * 1e-9
        edges = sorted({*edges, -tiny if low < 0 else 0.0, tiny if high > 0 else 0.0} - {low, high})
        edges = [low, *[e for e in edges if low < e < high], high]
    return tuple(float(e) for e in edges)


def _sdtype(metadata: Mapping[str, Any], name: str) -> str:
    return str(metadata.get("columns", {}).get(name, {}).get("sdtype", "categorical"))


def build_domains(
    frame: pd.DataFrame, metadata: Mapping[str, Any], public_domain: Mapping[str, Any] | None = None
) -> list[ColumnDomain]:
    """Each column's public domain: ``public_domain[column]`` when given (a list of categories, or
    ``{"min": a, "max": b}``), else read from ``frame`` (declared public by the provider).

    sdtypes numerical and datetime become binned ranges, categorical and boolean categories, id a counter;
    other sdtypes (e-mail, names and other PII) are refused: their domain would be the private values.
    """
    given = dict(public_domain or {})
    unknown = sorted(set(given) - set(frame.columns))
    if unknown:
        raise TreeModelError("bad_domain", f"The public domain names unknown columns: {', '.join(unknown)}.")
    domains = []
    for name in frame.columns:
        sdtype = _sdtype(metadata, name)
        column = frame[name]
        source = "provider" if name in given else "data"
        if sdtype == "id":
            domains.append(ColumnDomain(str(name), "id", source="public"))
        elif sdtype in ("numerical", "datetime"):
            domains.append(_numeric_domain(str(name), sdtype, column, given.get(name), source))
        elif sdtype in ("categorical", "boolean"):
            domains.append(_categorical_domain(str(name), column, given.get(name), source))
        else:
            raise TreeModelError(
                "unsupported_column",
                f"Column {name!r} is {sdtype}: its values would be the domain. Drop it, or declare it "
                "categorical in the metadata.",
            )
    return domains


def _numeric_domain(name: str, sdtype: str, column: pd.Series, given: Any, source: str) -> ColumnDomain:
    values = _as_numbers(column, sdtype)
    if given is not None:
        if not isinstance(given, Mapping) or not {"min", "max"} <= set(given):
            raise TreeModelError("bad_domain", f"The domain of {name!r} must be {{'min': …, 'max': …}}.")
        low, high = float(given["min"]), float(given["max"])
    else:
        present = values[~np.isnan(values)]
        if present.size == 0:
            low, high = 0.0, 0.0
        else:
            low, high = float(present.min()), float(present.max())
    integer = sdtype == "numerical" and bool(
        pd.api.types.is_integer_dtype(column.dtype)
        or (values[~np.isnan(values)] == np.round(values[~np.isnan(values)])).all()
    )
    if sdtype == "datetime":
        integer = True
    return ColumnDomain(
        name, sdtype, edges=_numeric_edges(low, high, integer), integer=integer, source=source
    )


def _categorical_domain(name: str, column: pd.Series, given: Any, source: str) -> ColumnDomain:
    if given is not None:
        if not isinstance(given, list) or not given:
            raise TreeModelError("bad_domain", f"The domain of {name!r} must be a non-empty list of values.")
        values = [_plain(v) for v in given]
    else:
        present = column.dropna().unique().tolist()
        values = sorted((_plain(v) for v in present), key=lambda v: (str(type(v)), str(v)))
    if len(values) > MAX_CATEGORIES:
        raise TreeModelError(
            "too_many_categories",
            f"Column {name!r} has {len(values)} categories; at most {MAX_CATEGORIES} (declare it numerical "
            "or drop it).",
        )
    return ColumnDomain(name, "categorical", values=tuple(values), source=source)


def _plain(value: Any) -> Any:
    """A JSON-native copy of a cell (numpy scalars to Python)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_numbers(column: pd.Series, sdtype: str) -> np.ndarray:
    if sdtype == "datetime":
        moments = pd.to_datetime(column, errors="coerce", utc=True)
        seconds = moments.astype("int64").astype("float64") / 1e9
        return np.where(moments.isna().to_numpy(), np.nan, seconds.to_numpy())
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()


def encode(frame: pd.DataFrame, domains: Sequence[ColumnDomain]) -> np.ndarray:
    """Rows as codes (n × d, int64): category index or bin, ``size - 1`` for missing and out-of-domain."""
    codes = np.empty((len(frame), len(domains)), dtype=np.int64)
    for index, domain in enumerate(domains):
        column = frame[domain.name]
        missing = domain.size - 1
        if domain.kind == "id":
            codes[:, index] = 0
        elif domain.kind == "categorical":
            lookup = {value: code for code, value in enumerate(domain.values)}
            codes[:, index] = [
                missing if _is_missing(value) else lookup.get(_plain(value), missing) for value in column
            ]
        else:
            values = _as_numbers(column, domain.kind)
            edges = np.asarray(domain.edges)
            binned = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
            outside = np.isnan(values) | (values < edges[0]) | (values > edges[-1])
            codes[:, index] = np.where(outside, missing, binned)
    return codes


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


# -- fitting --------------------------------------------------------------------------------------------------


def _counts(codes: np.ndarray, columns: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    shape = tuple(sizes[c] for c in columns)
    flat = np.ravel_multi_index(tuple(codes[:, c] for c in columns), shape)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)


class _Noise:
    """The DP measurements of one fit through OpenDP, each with the ρ its privacy map states."""

    def __init__(self) -> None:
        self.dp = _opendp()
        self.steps: list[dict[str, Any]] = []

    def gaussian(self, counts: np.ndarray, rho: float, step: str) -> np.ndarray:
        """``counts`` (one row adds 1 to one cell: L2 sensitivity 1) plus discrete Gaussian noise of ρ."""
        dp = self.dp
        scale = 1.0 / math.sqrt(2.0 * rho)
        measurement = dp.m.make_gaussian(
            dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale
        )
        spent = float(measurement.map(1))
        noisy = np.asarray(measurement([int(v) for v in counts.ravel()]), dtype=np.float64)
        self.steps.append({"step": step, "rho": spent, "sigma": scale})
        return noisy.reshape(counts.shape)

    def select(self, scores: Sequence[int], rho: float, step: str) -> int:
        """The index of a high score by the exponential mechanism (Gumbel noisy max), sensitivity 1."""
        dp = self.dp
        scale = 1.0 / math.sqrt(2.0 * rho)
        measurement = dp.m.make_noisy_max(
            dp.vector_domain(dp.atom_domain(T=int)),
            dp.linf_distance(T=int),
            output_measure=dp.zero_concentrated_divergence(),
            scale=scale,
        )
        spent = float(measurement.map(1))
        self.steps.append({"step": step, "rho": spent})
        return int(measurement([int(s) for s in scores]))


def _compress(noisy: np.ndarray, sigma: float) -> tuple[list[list[int]], np.ndarray]:
    """MST's domain compression: codes whose noisy count is at least 3σ keep their own code, the others share
    one last code. Returns the groups (original codes per compressed code) and the compressed noisy counts."""
    keep = [code for code in range(len(noisy)) if noisy[code] >= 3 * sigma]
    rare = [code for code in range(len(noisy)) if noisy[code] < 3 * sigma]
    groups = [[code] for code in keep] + ([rare] if rare else [])
    counts = np.array([noisy[group].sum() for group in groups])
    return groups, counts


def _spanning_tree(
    d: int, choose: Callable[[list[tuple[int, int]]], tuple[int, int]]
) -> list[tuple[int, int]]:
    """Kruskal's construction where ``choose`` picks one edge among those joining two components."""
    component = list(range(d))
    edges: list[tuple[int, int]] = []
    for _ in range(d - 1):
        candidates = [(a, b) for a in range(d) for b in range(a + 1, d) if component[a] != component[b]]
        a, b = choose(candidates)
        edges.append((a, b))
        old, new = component[b], component[a]
        component = [new if c == old else c for c in component]
    return edges


def fit_tree(
    codes: np.ndarray,
    sizes: Sequence[int],
    *,
    rho: float | None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit the tree model on encoded rows. ``rho`` None: exact Chow-Liu; else MST spending ``rho`` (zCDP).

    Returns the model's parts: ``groups`` (per column, original codes per fitted code), ``edges`` (pairs of
    column indexes), ``marginals`` (per column, nonnegative counts over fitted codes), ``pairs`` (per edge,
    nonnegative counts) and ``steps`` (the measurements and their ρ; empty without noise).
    """
    report = progress or (lambda _: None)
    if rho is None:
        return _fit_exact_tree(codes, sizes, report)
    d = codes.shape[1]
    noise = _Noise()
    rho_part = rho / 3.0
    report("measuring 1-way marginals")
    groups, marginals, compressed, dropped = _measure_marginals(codes, sizes, noise, rho_part / d)
    fitted_sizes = [len(g) for g in groups]
    tree: list[tuple[int, int]] = []
    if d > 1:
        report("choosing the tree")
        tree = _choose_noisy_tree(compressed, marginals, fitted_sizes, noise, rho_part / (d - 1))
    report("measuring 2-way marginals")
    pairs = [
        np.clip(
            noise.gaussian(_counts(compressed, list(edge), fitted_sizes), rho_part / max(d - 1, 1), "2-way"),
            0,
            None,
        )
        for edge in tree
    ]
    return {
        "groups": groups,
        "edges": tree,
        "marginals": marginals,
        "pairs": pairs,
        "steps": noise.steps,
        "dropped": dropped,
    }


def _fit_exact_tree(codes: np.ndarray, sizes: Sequence[int], report: Callable[[str], None]) -> dict[str, Any]:
    """``fit_tree`` without noise: exact counts and the Chow-Liu tree (highest mutual information)."""
    d = codes.shape[1]
    groups = [[[code] for code in range(size)] for size in sizes]
    marginals = [_counts(codes, [c], sizes) for c in range(d)]
    report("choosing the tree")
    information: dict[tuple[int, int], float] = {}

    def strongest(options: list[tuple[int, int]]) -> tuple[int, int]:
        for edge in options:
            if edge not in information:
                information[edge] = _mutual_information(codes, edge, sizes)
        return max(options, key=information.__getitem__)

    edges = _spanning_tree(d, strongest)
    pairs = [_counts(codes, list(edge), sizes) for edge in edges]
    return {
        "groups": groups,
        "edges": edges,
        "marginals": marginals,
        "pairs": pairs,
        "steps": [],
        "dropped": [[] for _ in range(d)],
    }


def _measure_marginals(
    codes: np.ndarray, sizes: Sequence[int], noise: _Noise, rho_each: float
) -> tuple[list[list[list[int]]], list[np.ndarray], np.ndarray, list[list[int]]]:
    """Each column's noisy 1-way counts (``rho_each`` per column), compressed: (groups, nonnegative counts,
    the rows in compressed codes, per column the fitted codes never sampled)."""
    groups, marginals, compressed = [], [], np.empty_like(codes)
    # A merged group (each member under 3σ) holding only the missing value is noise: it is never sampled.
    dropped: list[list[int]] = []
    for column in range(codes.shape[1]):
        noisy = noise.gaussian(_counts(codes, [column], sizes), rho_each, f"1-way {column}")
        sigma = noise.steps[-1]["sigma"]
        column_groups, column_counts = _compress(noisy, sigma)
        merged_only_missing = noisy[sizes[column] - 1] < 3 * sigma and column_groups[-1] == [
            sizes[column] - 1
        ]
        dropped.append([len(column_groups) - 1] if merged_only_missing else [])
        lookup = np.empty(sizes[column], dtype=np.int64)
        for new, group in enumerate(column_groups):
            lookup[group] = new
        compressed[:, column] = lookup[codes[:, column]]
        groups.append(column_groups)
        marginals.append(np.clip(column_counts, 0, None))
    return groups, marginals, compressed, dropped


def _choose_noisy_tree(
    compressed: np.ndarray,
    marginals: list[np.ndarray],
    fitted_sizes: Sequence[int],
    noise: _Noise,
    rho_each: float,
) -> list[tuple[int, int]]:
    """MST's tree: each edge picked by the exponential mechanism (``rho_each`` per pick) among those joining
    two components, scored by how far the pair's counts lie from independence of the noisy marginals."""
    total = max(float(np.mean([m.sum() for m in marginals])), 1.0)
    probabilities = [m / m.sum() if m.sum() > 0 else np.full(len(m), 1 / len(m)) for m in marginals]
    errors: dict[tuple[int, int], int] = {}

    def choose(options: list[tuple[int, int]]) -> tuple[int, int]:
        for a, b in options:
            if (a, b) not in errors:
                exact = _counts(compressed, [a, b], fitted_sizes)
                estimate = np.outer(probabilities[a], probabilities[b]) * total
                errors[(a, b)] = round(float(np.abs(exact - estimate).sum()))
        scores = [errors[edge] for edge in options]
        return options[noise.select(scores, rho_each, "tree edge")]

    return _spanning_tree(len(marginals), choose)


def _mutual_information(codes: np.ndarray, edge: tuple[int, int], sizes: Sequence[int]) -> float:
    joint = _counts(codes, list(edge), sizes)
    joint /= max(joint.sum(), 1.0)
    outer = np.outer(joint.sum(axis=1), joint.sum(axis=0))
    mask = joint > 0
    return float((joint[mask] * np.log(joint[mask] / outer[mask])).sum())


def build_model(
    domains: Sequence[ColumnDomain], parts: Mapping[str, Any], *, engine: str, rows: int
) -> dict[str, Any]:
    """The JSON model: domains, fitted-code groups, the tree rooted at column 0's component, the root's
    distribution and each child's conditional distribution given its parent (rows sum to 1)."""
    d = len(domains)
    neighbours: dict[int, list[int]] = {c: [] for c in range(d)}
    pair_of: dict[tuple[int, int], np.ndarray] = {}
    for (a, b), counts in zip(parts["edges"], parts["pairs"], strict=True):
        neighbours[a].append(b)
        neighbours[b].append(a)
        pair_of[(a, b)] = counts
        pair_of[(b, a)] = counts.T
    dropped = parts.get("dropped") or [[] for _ in range(d)]
    marginals = []
    for column, counts in enumerate(parts["marginals"]):
        kept = np.array(counts, dtype=np.float64)
        kept[dropped[column]] = 0
        marginals.append(_normalized(kept))
    order, parent = [], {}
    for root in range(d):
        if root in parent or root in order:
            continue
        order.append(root)
        queue = [root]
        while queue:
            node = queue.pop(0)
            for child in neighbours[node]:
                if child not in order:
                    order.append(child)
                    parent[child] = node
                    queue.append(child)
    conditionals = {}
    for child, node in parent.items():
        joint = np.array(pair_of[(node, child)], dtype=np.float64)
        joint[:, dropped[child]] = 0
        rows_sum = joint.sum(axis=1, keepdims=True)
        conditional = np.where(rows_sum > 0, joint / np.where(rows_sum > 0, rows_sum, 1), marginals[child])
        conditionals[str(child)] = [_normalized(row).tolist() for row in conditional]
    return {
        "format": MODEL_FORMAT,
        "engine": engine,
        "rows": rows,
        "columns": [domain.to_dict() for domain in domains],
        "groups": parts["groups"],
        "order": order,
        "parents": {str(child): node for child, node in parent.items()},
        "marginals": [m.tolist() for m in marginals],
        "conditionals": conditionals,
    }


def _normalized(counts: np.ndarray) -> np.ndarray:
    counts = np.clip(np.asarray(counts, dtype=np.float64), 0, None)
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))


def fit(
    frame: pd.DataFrame,
    metadata: Mapping[str, Any],
    *,
    engine: str,
    epsilon: float | None = None,
    delta: float | None = None,
    public_domain: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Accounting | None]:
    """Fit ``frame`` (columns in the order of ``metadata``) and return the JSON model and, with ``epsilon``,
    the accounting of the DP fit (ε, δ the provider asked for; ρ spent per step; the ε it converts to)."""
    domains = build_domains(frame, metadata, public_domain)
    codes = encode(frame, domains)
    sizes = [domain.size for domain in domains]
    if epsilon is None:
        parts = fit_tree(codes, sizes, rho=None, progress=progress)
        return build_model(domains, parts, engine=engine, rows=len(frame)), None
    if delta is None or not 0 < delta < 1:
        raise TreeModelError("bad_delta", "δ must lie strictly between 0 and 1.")
    # A hair under the searched ρ, so that float rounding in the maps cannot take the sum past it.
    rho = rho_for(epsilon, delta) * (1 - 1e-9)
    parts = fit_tree(codes, sizes, rho=rho, progress=progress)
    spent = float(sum(step["rho"] for step in parts["steps"]))
    accounting = Accounting(
        epsilon_requested=epsilon,
        delta=delta,
        rho_total=spent,
        epsilon=epsilon_for_rho(spent, delta),
        steps=tuple(parts["steps"]),
    )
    if accounting.epsilon > epsilon * (1 + 1e-9):
        raise TreeModelError("accounting", "The composed ρ exceeds the requested ε; nothing was released.")
    return build_model(domains, parts, engine=engine, rows=len(frame)), accounting


# -- sampling -------------------------------------------------------------------------------------------------


def sample(model: Mapping[str, Any], rows: int, seed: int) -> pd.DataFrame:
    """Draw ``rows`` rows from a JSON model; the same seed gives the same rows."""
    if model.get("format") != MODEL_FORMAT:
        raise TreeModelError("bad_model", "This is not a synthex.tree-model/v1 document.")
    rng = np.random.default_rng(seed)
    batches = [
        _sample_batch(rng, model, min(BATCH_ROWS, rows - start)) for start in range(0, rows, BATCH_ROWS)
    ]
    return pd.concat(batches, ignore_index=True) if len(batches) != 1 else batches[0]


def _sample_batch(rng: np.random.Generator, model: Mapping[str, Any], rows: int) -> pd.DataFrame:
    columns = model["columns"]
    fitted = np.zeros((rows, len(columns)), dtype=np.int64)
    for column in model["order"]:
        parent = model["parents"].get(str(column))
        if parent is None:
            fitted[:, column] = _draw(rng, np.asarray(model["marginals"][column]), rows)
            continue
        table = np.asarray(model["conditionals"][str(column)])
        cumulative = np.cumsum(table, axis=1)
        cumulative[:, -1] = 1.0
        picks = rng.random(rows)
        given = fitted[:, parent]
        fitted[:, column] = (picks[:, None] > cumulative[given]).sum(axis=1)
    data = {}
    for index, spec in enumerate(columns):
        original = _ungroup(rng, model["groups"][index], fitted[:, index])
        data[spec["name"]] = _decode(rng, spec, original, rows)
    return pd.DataFrame(data, columns=[spec["name"] for spec in columns])


def _draw(rng: np.random.Generator, probabilities: np.ndarray, rows: int) -> np.ndarray:
    return rng.choice(len(probabilities), size=rows, p=probabilities / probabilities.sum())


def _ungroup(rng: np.random.Generator, groups: list[list[int]], fitted: np.ndarray) -> np.ndarray:
    """Fitted codes back to original codes (uniform within a merged group)."""
    missing = max(code for group in groups for code in group)
    # A merged group of rare values stands for those values; it yields "missing" only when that is all it
    # holds (a rule on the codes alone: post-processing).
    members = [[member for member in group if member != missing] or group for group in groups]
    out = np.asarray([group[0] for group in members], dtype=np.int64)[fitted]
    for code, group in enumerate(members):
        if len(group) > 1:
            where = np.flatnonzero(fitted == code)
            out[where] = np.asarray(group)[rng.integers(0, len(group), size=len(where))]
    return out


def _decode(rng: np.random.Generator, spec: Mapping[str, Any], codes: np.ndarray, rows: int) -> pd.Series:
    if spec["kind"] == "id":
        return pd.Series(np.arange(rows, dtype=np.int64))
    if spec["kind"] == "categorical":
        categories = list(spec["values"])
        missing = codes >= len(categories)
        kinds = {type(v) for v in categories}
        if not kinds <= {bool, int, float}:
            categories = [str(v) for v in categories]
        picked = np.asarray([*categories, None], dtype=object)[np.minimum(codes, len(categories))]
        if kinds <= {bool}:
            return pd.Series(picked, dtype="boolean" if missing.any() else "bool")
        if kinds <= {int}:
            return pd.Series(picked, dtype="Int64" if missing.any() else "int64")
        if kinds <= {int, float}:
            return pd.Series(picked, dtype="float64")
        return pd.Series(picked, dtype="object")
    bounds = np.asarray(spec["edges"])
    bins = len(bounds) - 1
    missing = codes >= bins
    safe = np.minimum(codes, bins - 1)
    low, high = bounds[safe], bounds[safe + 1]
    values = low + (high - low) * rng.random(len(codes))
    if spec["integer"]:
        values = np.clip(np.round(values), math.ceil(bounds[0]), math.floor(bounds[-1]))
    values = np.where(missing, np.nan, values)
    if spec["kind"] == "datetime":
        return pd.Series(pd.to_datetime(values, unit="s", utc=True).tz_localize(None))
    if spec["integer"] and not missing.any():
        return pd.Series(values.astype(np.int64))
    return pd.Series(values)
