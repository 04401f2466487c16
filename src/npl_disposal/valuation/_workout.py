"""The month-by-month workout of a kept loan: migration between classes, recovery, cure.

A kept NPL moves each month between the NPL classes, is recovered (at its age then),
cured (repaid) or written off, by the monthly hazards of the assumptions or of a
migration matrix. :class:`Kernel` sums the discounted recoveries in small (class x age
x month) tables, never in a loans x months matrix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Union, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.io.schema import BOOL_ALIASES, NPL_CLASSES
from npl_disposal.valuation._defaults import CURE_STATES, TYPES
from npl_disposal.valuation.recovery import (
    UNKNOWN_COLLATERAL,
    RecoveryCurve,
    collateral_codes,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
Problem = tuple[str, str]

LOSS = NPL_CLASSES.index("loss")
#: Ages (months) beyond which the unsecured curves are read at this age (they are flat by then).
AGE_CAP = 1200
#: Loans valued at a time: a block's few dozen temporary arrays stay in the processor's cache.
RETAIN, WRITE_OFF, BULK, SECURITISATION, RESTRUCTURE = range(5)

# --------------------------------------------------------------------------- migration


@runtime_checkable
class MatrixLike(Protocol):
    matrix: Any
    states: Any


#: What ``migration`` accepts: an object with ``.matrix`` and ``.states`` (and optionally
#: ``.months``), such as ``npl_disposal.valuation.MigrationMatrix``, or a square DataFrame
#: (rows: from-state, columns: to-state).
MigrationLike = Union[MatrixLike, pd.DataFrame]  # noqa: UP007 (a runtime alias on 3.10)


@dataclass(frozen=True)
class Chain:
    """One-step workout chain among the NPL classes, with absorbing exits."""

    q: FloatArray  # (3, 3) moves among NPL classes
    recovered: FloatArray  # (3,) workout ends with a recovery
    cured: FloatArray  # (3,) the claim comes back in full
    step_months: float

    @classmethod
    def from_hazards(cls, hazards: Mapping[str, Mapping[str, float]]) -> Chain:
        """Monthly chain from the assumptions' hazards."""
        k = len(NPL_CLASSES)
        q = np.zeros((k, k))
        recovered, cured = np.zeros(k), np.zeros(k)
        for i, c in enumerate(NPL_CLASSES):
            row = hazards[c]
            for j, d in enumerate(NPL_CLASSES):
                q[i, j] = row[d] if i != j else 0.0
            recovered[i], cured[i] = row["recovered"], row["repaid"]
            q[i, i] = max(0.0, 1.0 - sum(row.values()))
        return cls(q, recovered, cured, 1.0)

    @classmethod
    def from_migration(cls, migration: MigrationLike) -> Chain:
        """Chain from a migration matrix (duck-typed ``.matrix``/``.states``/``.months``)."""
        if isinstance(migration, pd.DataFrame):
            states = [str(s) for s in migration.index]
            if [str(s) for s in migration.columns] != states:
                migration = migration.reindex(columns=migration.index, fill_value=0.0)
            matrix = migration.to_numpy(dtype=float)
            months = 1.0
        elif hasattr(migration, "matrix") and hasattr(migration, "states"):
            raw = migration.matrix
            matrix = np.asarray(raw.to_numpy() if isinstance(raw, pd.DataFrame) else raw, float)
            states = [str(s) for s in migration.states]
            months = float(getattr(migration, "months", 1) or 1)
        else:
            raise TypeError(
                "migration must be a MigrationMatrix (with .matrix and .states) or a square "
                f"DataFrame of one-period transition probabilities; got {type(migration).__name__}"
            )
        if matrix.shape != (len(states), len(states)):
            raise ValueError(f"migration matrix is {matrix.shape} for {len(states)} states")
        missing = [c for c in NPL_CLASSES if c not in states]
        if missing:
            raise ValueError(f"migration matrix lacks the NPL state(s) {missing}; states: {states}")
        if not math.isfinite(months) or months <= 0:
            raise ValueError(f"migration matrix months must be > 0; got {months}")
        pos = {s: i for i, s in enumerate(states)}
        rows = matrix[[pos[c] for c in NPL_CLASSES]]
        if np.any(rows < -1e-12) or np.any(np.abs(rows.sum(axis=1) - 1.0) > 1e-6):
            raise ValueError(
                "migration matrix rows of the NPL states must be probabilities summing to 1"
            )
        rows = np.clip(rows, 0.0, 1.0)

        def col(names: Sequence[str]) -> FloatArray:
            idx = [pos[s] for s in names if s in pos]
            return rows[:, idx].sum(axis=1) if idx else np.zeros(len(NPL_CLASSES))

        q = rows[:, [pos[c] for c in NPL_CLASSES]]
        return cls(q, col(("recovered",)), col(CURE_STATES), months)


# --------------------------------------------------------------------------- workout kernel


class Kernel:
    """Prefix sums over the workout months of recovery probabilities times discount.

    For start class c, step t (1..H) and end class s, ``q[r, c, t, s]`` is the
    probability that a retained loan is recovered at step t from class s, times the
    discount factor at annual rate ``rates[r]``. ``W0[r, c, k]`` / ``W1[r, c, k]`` sum
    ``q`` (and ``q * t``) over s and t <= k; ``U0`` / ``U1[r, c, a, k]`` do the same
    weighted by the unsecured rate of class s at age ``a + t * step``. Sizes are
    (R, 3, H+1) and (R, 3, A+1, H+1): kilobytes to a few megabytes. ``cure_upto[r, c, k]``
    sums the discounted cure probabilities over t <= k, for workouts cut short at step k.
    """

    def __init__(
        self,
        chain: Chain,
        curves: Sequence[RecoveryCurve],
        horizon_months: float,
        rates: Sequence[float],
        max_age: int,
    ) -> None:
        step = chain.step_months
        h = max(1, int(horizon_months // step))
        t = np.arange(1, h + 1, dtype=float)
        k = len(NPL_CLASSES)
        dist = np.empty((k, h, k))
        current = np.eye(k)
        for i in range(h):  # h is the horizon in steps (120), not the number of loans
            dist[:, i, :] = current
            current = current @ chain.q
        ages = np.arange(max_age + 1, dtype=float)
        u = np.stack([c.rate(ages[:, None] + t[None, :] * step) for c in curves])  # (s, a, t)
        self.W0, self.W1, self.U0, self.U1, self.cure = [], [], [], [], []
        self.cure_upto: list[FloatArray] = []
        for rate in rates:
            disc = (1.0 + rate) ** (-(t * step) / 12.0)
            qrec = dist * chain.recovered[None, None, :] * disc[None, :, None]
            cured = dist * chain.cured[None, None, :] * disc[None, :, None]
            self.cure.append(cured.sum(axis=(1, 2)))
            w = qrec.sum(axis=2)
            zeros = np.zeros((k, 1))
            self.cure_upto.append(
                np.concatenate([zeros, np.cumsum(cured.sum(axis=2), axis=1)], axis=1).ravel()
            )
            self.W0.append(np.concatenate([zeros, np.cumsum(w, axis=1)], axis=1).ravel())
            self.W1.append(np.concatenate([zeros, np.cumsum(w * t, axis=1)], axis=1).ravel())
            inc = np.einsum("cts,sat->cat", qrec, u)
            zeros3 = np.zeros((k, max_age + 1, 1))
            self.U0.append(np.concatenate([zeros3, np.cumsum(inc, axis=2)], axis=2).ravel())
            self.U1.append(np.concatenate([zeros3, np.cumsum(inc * t, axis=2)], axis=2).ravel())
        self.h, self.step, self.max_age = h, step, max_age

    def evaluate(
        self,
        cls: IntArray,
        age: FloatArray,
        exposure: FloatArray,
        collateral: FloatArray,
        alpha: FloatArray,
        beta: FloatArray,
        cover: FloatArray,
        deltas: Sequence[float],
        upto: int | None = None,
    ) -> list[tuple[FloatArray, FloatArray]]:
        """Discounted gross recoveries and cures (CNY yuan) at each rate, at whole ``age``.

        The collateral realised at step t is ``min(E, V * max(0, alpha - beta * (a + t *
        step)))``: capped at the exposure up to step k1, linear up to step k2, zero after;
        each piece is summed exactly from the prefix tables. ``deltas[r]`` discounts the
        guarantee lag at rate r. ``upto`` counts only the workouts that end by that step
        (the collections of a loan kept ``upto`` steps); by default the whole horizon.
        """
        stride, step = self.h + 1, self.step
        h = self.h if upto is None else max(0, min(int(upto), self.h))
        e, v = exposure, collateral
        slope = beta * step
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            level = alpha - beta * age  # realised share at step 0
            x2 = level / slope  # last step with collateral left is ceil(x2) - 1
            x1 = level - e / v  # steps capped at the exposure: t <= x1 / slope
            x1 /= slope
        flat = beta <= 0
        if flat.any():
            x1[flat] = np.where(v[flat] * alpha[flat] >= e[flat], np.inf, -np.inf)
            x2[flat] = np.where(alpha[flat] > 0, np.inf, -np.inf)
        np.nan_to_num(x1, copy=False, nan=-np.inf)
        k1 = np.clip(np.floor(x1, out=x1), 0, h, out=x1).astype(np.intp)
        np.ceil(x2, out=x2)
        x2 -= 1.0
        k2 = np.clip(x2, 0, h, out=x2).astype(np.intp)
        np.maximum(k2, k1, out=k2)
        row = cls * stride
        r1, r2, rtot = row + k1, row + k2, row + h
        base = (cls * (self.max_age + 1) + np.minimum(age, self.max_age).astype(np.intp)) * stride
        b1, b2, btot = base + k1, base + k2, base + h
        level *= v
        vslope = v * slope
        out = []
        for r, delta in enumerate(deltas):
            w0, w1, u0, u1 = self.W0[r], self.W1[r], self.U0[r], self.U1[r]
            w0_1, u0_1, wtot = w0[r1], u0[b1], w0[rtot]
            coll = e * w0_1 + level * (w0[r2] - w0_1) - vslope * (w1[r2] - w1[r1])
            coll_u = e * u0_1 + level * (u0[b2] - u0_1) - vslope * (u1[b2] - u1[b1])
            dcp = delta * cover
            gross = (1.0 - dcp) * coll + dcp * e * wtot + (1.0 - cover) * (e * u0[btot] - coll_u)
            np.clip(gross, 0.0, e * wtot, out=gross)
            cure = self.cure[r][cls] if upto is None else self.cure_upto[r][rtot]
            out.append((gross, e * cure))
        return out


# --------------------------------------------------------------------------- loan arrays


@dataclass(frozen=True)
class Loans:
    """The loan columns the valuation uses, as numpy arrays (one element per loan)."""

    balance: FloatArray
    provision: FloatArray
    interest: FloatArray
    cls: IntArray
    age: FloatArray
    collateral: FloatArray
    type_code: IntArray
    cover: FloatArray
    recourse: FloatArray
    small_micro: BoolArray
    viable: BoolArray
    evidence: BoolArray

    def block(self, piece: slice) -> Loans:
        """The loans of ``piece`` (views, not copies)."""
        return Loans(**{f.name: getattr(self, f.name)[piece] for f in dataclasses.fields(self)})

    @classmethod
    def of(cls, loans: pd.DataFrame, evidence_columns: Sequence[str]) -> Loans:
        """Extract the arrays from a validated loan table (optional columns default to 0)."""
        n = len(loans)

        def num(name: str) -> FloatArray:
            if name not in loans.columns:
                return np.zeros(n)
            values = loans[name].to_numpy(dtype=np.float64, na_value=np.nan)
            return np.nan_to_num(values, nan=0.0) if np.isnan(values).any() else values

        def flag(name: str) -> BoolArray:
            return bool_column(loans[name]) if name in loans.columns else np.zeros(n, bool)

        classes = loans["classification"]
        if (
            isinstance(classes.dtype, pd.CategoricalDtype)
            and tuple(classes.cat.categories) == NPL_CLASSES
        ):
            code = classes.cat.codes.to_numpy().astype(np.intp)
        else:
            code = pd.Index(NPL_CLASSES).get_indexer(classes.astype(object)).astype(np.intp)
        if np.any(code < 0):
            raise ValueError(
                "classification must be substandard, doubtful or loss; "
                "read the loans with npl_disposal.read_portfolio first"
            )
        collateral = np.maximum(num("collateral_value"), 0.0)
        if "collateral_type" in loans.columns:
            types = collateral_codes(loans["collateral_type"])
        else:
            types = np.full(n, TYPES.index(UNKNOWN_COLLATERAL), dtype=np.intp)
        evidence = np.zeros(n, bool)
        for name in evidence_columns:
            evidence |= flag(name)
        return cls(
            balance=num("balance"),
            provision=num("provision"),
            interest=np.maximum(num("interest_receivable"), 0.0),
            cls=code,
            age=np.maximum(num("npl_age_months"), 0.0),
            collateral=collateral,
            type_code=types,
            cover=np.clip(num("guarantee_cover"), 0.0, 1.0),
            recourse=num("recourse_days"),
            small_micro=flag("small_micro"),
            viable=flag("viability"),
            evidence=evidence,
        )

    @property
    def net_book(self) -> FloatArray:
        """Net book value, balance less provision (CNY yuan)."""
        return self.balance - self.provision

    @property
    def secured(self) -> BoolArray:
        """Loans with collateral of a type other than ``none``."""
        return (self.collateral > 0) & (self.type_code != TYPES.index("none"))


def bool_column(column: pd.Series) -> BoolArray:
    """A flag column as booleans; text such as yes / 是 is read, anything else is false."""
    if pd.api.types.is_bool_dtype(column.dtype) and not column.isna().any():
        return column.to_numpy(dtype=bool)
    codes, uniques = pd.factorize(column.astype("string").str.strip().str.lower())
    mapped = np.array([bool(BOOL_ALIASES.get(str(u), False)) for u in uniques] + [False])
    return mapped[np.where(codes < 0, len(uniques), codes)]


# --------------------------------------------------------------------------- valuation


def per_class(curves: Mapping[str, RecoveryCurve], cls: IntArray, age: FloatArray) -> FloatArray:
    """Curve rate of each loan's class at its age (vectorised; one call per class)."""
    chosen = [curves[name] for name in NPL_CLASSES]
    if not any(c.is_table for c in chosen):
        initial = np.array([c.initial for c in chosen])[cls]
        floor = np.array([c.floor for c in chosen])[cls]
        half_life = np.array([c.half_life_months for c in chosen])[cls]
        return floor + (initial - floor) * np.exp2(-np.maximum(age, 0.0) / half_life)
    out = np.empty(age.shape)
    for i, curve in enumerate(chosen):
        mask = cls == i
        out[mask] = curve.rate(age[mask])
    return out


def workout(
    kernel: Kernel,
    lo: Loans,
    exposure: FloatArray,
    alpha: FloatArray,
    beta: FloatArray,
    cover: FloatArray,
    deltas: Sequence[float],
    upto: int | None = None,
) -> list[tuple[FloatArray, FloatArray]]:
    """Gross recoveries and cures per rate, interpolated linearly between whole months.

    ``upto``: only the workouts that end within that many steps (see :meth:`Kernel.evaluate`).
    """
    whole = np.floor(lo.age)
    frac = lo.age - whole
    args = (exposure, lo.collateral, alpha, beta, cover, deltas, upto)
    out = kernel.evaluate(lo.cls, whole, *args)
    part = np.flatnonzero(frac)
    if part.size == 0:
        return out
    if 4 * part.size >= frac.size:  # many fractional ages: evaluate everyone, no subsetting
        upper = kernel.evaluate(lo.cls, whole + 1.0, *args)
        for (gross, cure), (g1, c1) in zip(out, upper, strict=True):
            gross += frac * (g1 - gross)
            cure += frac * (c1 - cure)
        return out
    sub = (exposure[part], lo.collateral[part], alpha[part], beta[part], cover[part], deltas, upto)
    upper = kernel.evaluate(lo.cls[part], whole[part] + 1.0, *sub)
    f = frac[part]
    for (gross, cure), (g1, c1) in zip(out, upper, strict=True):
        gross[part] += f * (g1 - gross[part])
        cure[part] += f * (c1 - cure[part])
    return out


def annuity_pv_factor(contract_rate: float, bank_rate: float, months: int) -> float:
    """PV at the bank's rate of equal instalments repaying 1 yuan at the contract rate."""
    rc = contract_rate / 12.0
    rb = (1.0 + bank_rate) ** (1.0 / 12.0) - 1.0
    payment = 1.0 / months if rc == 0 else rc / (1.0 - (1.0 + rc) ** -months)
    annuity = float(months) if rb == 0 else (1.0 - (1.0 + rb) ** -months) / rb
    return payment * annuity


