"""The scenario model of ``[risk]``: expected values, and the tail mean as rows on aggregates.

Scenario s multiplies the value v_im of every option of channel m and segment g by
f_smg. The expected value of a plan is then a reweighting of the options, with the
expected factor ``sum_s pi_s f_smg`` (:meth:`RiskTerms.expected_values`), so the
loans' grid keeps one value per option whatever the number of scenarios.

The tail mean at ``alpha`` (Rockafellar-Uryasev) is ``max over eta of eta - sum_s pi_s
u_s / (1 - alpha)`` with ``u_s >= eta - V_s``, ``u_s >= 0``. The scenario rows never
reach the loans: per channel and segment one equality row defines the aggregate
``A_mg = sum over the segment's loans of v_im x_im`` and each scenario's value is
``V_s = sum_mg f_smg A_mg - fixed costs``, a row over a few continuous variables. Every
loan thus enters one extra row, whatever the number of scenarios, and the decomposition
prices it like any budget. Continuous variables live in [0, 1], so each is an affine
map of its level: ``A_mg = L_mg + R_mg a_mg`` (L, U the sums of the negative and
positive values, R = U - L), ``eta = H + W e`` and ``u_s = W w_s`` with H and H + W
below and above every V_s; a constant ``aversion x H`` is added back to the objective
(:attr:`RiskTerms.offset`). ``docs/model.md`` states the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npl_disposal.io.scenarios import Scenarios
from npl_disposal.model.rows import Block, RowBuilder
from npl_disposal.policy.measures import MONEY
from npl_disposal.policy.risk import FLOOR_RULE, TailRule
from npl_disposal.policy.sections import Risk

__all__ = ["RiskTerms"]

_NONE = np.zeros(0, dtype=np.int64)
_NONE_F = np.zeros(0)


@dataclass(frozen=True, eq=False)
class RiskTerms:
    """The scenarios on a problem's channels and segments, and the tail model's terms.

    ``factors`` has shape ``(scenarios, channels, segments)``; ``pairs`` lists the
    (channel, segment) aggregates the tail model keeps (those with a nonzero value),
    ``low`` and ``span`` their L and R (CNY yuan); ``floor`` and ``width`` are H and
    W. ``switch_costs`` holds the fixed cost of each on/off block (by block name).
    """

    scenarios: Scenarios
    section: Risk
    channels: tuple[str, ...]
    segments: tuple[str, ...]
    factors: np.ndarray
    pairs: np.ndarray
    low: np.ndarray
    span: np.ndarray
    floor: float
    width: float
    switch_costs: tuple[tuple[str, float], ...]

    @classmethod
    def of(
        cls,
        scenarios: Scenarios,
        section: Risk,
        channels: tuple[str, ...],
        segments: tuple[str, ...],
        value: np.ndarray,
        eligible: np.ndarray,
        segment: np.ndarray,
        switch_costs: tuple[tuple[str, float], ...],
    ) -> RiskTerms:
        """The terms for a problem's base ``value`` grid (before reweighting) and segments."""
        factors = scenarios.factors(channels, segments)
        m, g = len(channels), len(segments)
        key = _pair_keys(eligible, segment, m)
        v = value.ravel()[np.flatnonzero(eligible.ravel())]
        low = np.bincount(key, np.minimum(v, 0.0), minlength=m * g)
        high = np.bincount(key, np.maximum(v, 0.0), minlength=m * g)
        pairs = np.flatnonzero(high - low > 0)
        low, span = low[pairs], (high - low)[pairs]
        f = _by_pair(factors)[:, pairs]
        fixed = sum(cost for _, cost in switch_costs)
        floor = float((f @ low).min(initial=0.0)) - fixed
        top = float((f @ (low + span)).max(initial=0.0))
        width = max(top - floor, 1.0)
        return cls(scenarios, section, channels, segments, factors, pairs, low, span, floor,
                   width, switch_costs)  # fmt: skip

    @property
    def expected(self) -> np.ndarray:
        """The expected factor of each (channel, segment): ``sum_s pi_s f_smg``."""
        return np.tensordot(self.scenarios.probability, self.factors, axes=1)

    def expected_values(self, value: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """The options' expected values (CNY yuan): ``value`` times its expected factor."""
        return value * self.expected.T[segment]

    @property
    def modelled(self) -> bool:
        """Whether the tail enters the model (an aversion or a floor)."""
        return self.section.modelled

    @property
    def offset(self) -> float:
        """The objective's constant ``aversion x H`` (CNY yuan), left out of the model."""
        return self.section.aversion * self.floor if self.modelled else 0.0

    @property
    def tail_scale(self) -> float:
        """``W / (1 - alpha)``: CNY yuan of tail mean lost per unit of probability-weighted w."""
        return self.width / (1.0 - self.section.alpha)

    def pair_name(self, p: int) -> str:
        """Name of aggregate ``p``: ``channel|segment``."""
        m = len(self.channels)
        pair = int(self.pairs[p])
        return f"{self.channels[pair % m]}|{self.segments[pair // m]}"

    def blocks(self) -> tuple[Block, ...]:
        """The continuous levels: aggregates, the threshold eta, the scenarios' shortfalls.

        Their objective weights (``-fixed_cost``) are ``aversion x W`` on eta and
        ``-aversion x W pi_s / (1 - alpha)`` on each shortfall: ``aversion`` times the
        tail mean, less the constant :attr:`offset`.
        """
        if not self.modelled:
            return ()
        lam = self.section.aversion
        prob = self.scenarios.probability
        out = [Block(f"risk_level[{self.pair_name(p)}]", 0.0, "continuous")
               for p in range(self.pairs.size)]  # fmt: skip
        out.append(Block("risk_threshold", -lam * self.width, "continuous"))
        out += [Block(f"risk_shortfall[{name}]", lam * self.tail_scale * float(pi), "continuous")
                for name, pi in zip(self.scenarios.names, prob, strict=True)]  # fmt: skip
        return tuple(out)

    def add_rows(self, rb: RowBuilder, value: np.ndarray, eligible: np.ndarray,
                 segment: np.ndarray, blocks: tuple[Block, ...]) -> None:  # fmt: skip
        """The aggregate rows (over the loans), one row per scenario and the floor."""
        if not self.modelled:
            return
        at = {b.name: j for j, b in enumerate(blocks)}
        level = np.array([at[f"risk_level[{self.pair_name(p)}]"] for p in range(self.pairs.size)],
                         dtype=np.int64)  # fmt: skip
        self._aggregate_rows(rb, value, eligible, segment, level, len(blocks))
        threshold = at["risk_threshold"]
        names = self.scenarios.names
        short = np.array([at[f"risk_shortfall[{s}]"] for s in names], dtype=np.int64)
        f = _by_pair(self.factors)[:, self.pairs]
        base = np.zeros(len(blocks))
        for name, cost in self.switch_costs:
            base[at[name]] = -cost
        base[threshold] = -self.width
        base[level] = 0.0
        for s, name in enumerate(names):  # u_s - eta + V_s >= 0
            coef = base.copy()
            coef[short[s]] = self.width
            coef[level] = f[s] * self.span
            rb.add(f"risk_scenario[{name}]", "risk.shortfall", MONEY, _NONE, _NONE_F,
                   lower=self.floor - float(f[s] @ self.low), block=coef)  # fmt: skip
        self._floor_row(rb, threshold, short, len(blocks))

    def _aggregate_rows(self, rb: RowBuilder, value: np.ndarray, eligible: np.ndarray,
                        segment: np.ndarray, level: np.ndarray, nb: int) -> None:  # fmt: skip
        """``sum over (m, g) of v_im x_im - R_mg a_mg = L_mg``, one row per aggregate."""
        m = len(self.channels)
        flat = np.flatnonzero(eligible.ravel())
        key = _pair_keys(eligible, segment, m, flat)
        order = np.argsort(key, kind="stable")  # options ascend within each aggregate
        starts = np.searchsorted(key[order], np.arange(len(self.channels) * len(self.segments) + 1))
        values = value.ravel()
        for p, pair in enumerate(self.pairs):
            cols = flat[order[starts[pair] : starts[pair + 1]]]
            vals = values[cols]
            keep = vals != 0
            coef = np.zeros(nb)
            coef[level[p]] = -self.span[p]
            rb.add(f"risk_total[{self.pair_name(p)}]", "risk.aggregate", MONEY, cols[keep],
                   vals[keep], lower=float(self.low[p]), upper=float(self.low[p]),
                   block=coef)  # fmt: skip

    def _floor_row(self, rb: RowBuilder, threshold: int, short: np.ndarray, nb: int) -> None:
        """``[risk] min_tail_value``: ``H + W e - W / (1 - alpha) sum_s pi_s w_s >= floor``."""
        wanted = self.section.min_tail_value
        if wanted is None:
            return
        coef = np.zeros(nb)
        coef[threshold] = self.width
        coef[short] = -self.tail_scale * self.scenarios.probability
        rb.add("risk_floor", FLOOR_RULE, MONEY, _NONE, _NONE_F, lower=wanted - self.floor,
               block=coef, short=TailRule(self.section).short,
               stated=(wanted, False, None))  # fmt: skip

    def tail_from_levels(self, y: np.ndarray, blocks: tuple[Block, ...]) -> float:
        """The model's tail mean (CNY yuan) at block levels ``y``."""
        at = {b.name: j for j, b in enumerate(blocks)}
        e = float(y[at["risk_threshold"]])
        w = np.array([y[at[f"risk_shortfall[{s}]"]] for s in self.scenarios.names])
        return self.floor + self.width * e - self.tail_scale * float(self.scenarios.probability @ w)


def _by_pair(factors: np.ndarray) -> np.ndarray:
    """Factors ``(scenarios, channels, segments)`` as ``(scenarios, aggregate keys)``."""
    return factors.transpose(0, 2, 1).reshape(factors.shape[0], -1)


def _pair_keys(
    eligible: np.ndarray, segment: np.ndarray, m: int, flat: np.ndarray | None = None
) -> np.ndarray:
    """Each eligible option's aggregate: ``segment * channels + channel`` (grid order)."""
    if flat is None:
        flat = np.flatnonzero(eligible.ravel())
    loan, channel = np.divmod(flat, m)
    return segment[loan] * m + channel
