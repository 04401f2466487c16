"""Loan states: the five-class classification and three absorbing exits, with aliases.

States (:data:`STATES`): the five-class loan classification (正常 / 关注 / 次级 / 可疑 /
损失; NPL = substandard + doubtful + loss) plus three absorbing exits: ``repaid``
(结清), ``recovered`` (收回: the bank recovered what it could and closed the loan) and
``written_off`` (核销). A loan that has reached an absorbing state never leaves it.
"""

from __future__ import annotations

from npl_disposal.io.schema import NPL_CLASSES

__all__ = [
    "ABSORBING_STATES",
    "ALLOWED_STATES",
    "DEFAULT_STATES",
    "NPL_STATES",
    "STATES",
    "STATE_ALIASES",
    "canonical_state",
    "normalised_state",
]

#: Default state names, in the order rows and columns are shown.
STATES: tuple[str, ...] = (
    "normal",
    "special_mention",
    "substandard",
    "doubtful",
    "loss",
    "repaid",
    "recovered",
    "written_off",
)
#: States a loan never leaves (the loan is closed).
ABSORBING_STATES: tuple[str, ...] = ("repaid", "recovered", "written_off")
#: Non-performing classes (次级 + 可疑 + 损失).
NPL_STATES: tuple[str, ...] = NPL_CLASSES
#: States that count as default in :meth:`MigrationMatrix.default_probability`.
DEFAULT_STATES: tuple[str, ...] = (*NPL_STATES, "written_off")

#: Accepted spellings (lower case; spaces and hyphens read as ``_``) -> state name.
STATE_ALIASES: dict[str, str] = {
    **{name: name for name in STATES},
    "pass": "normal",
    "performing": "normal",
    "正常": "normal",
    "正常类": "normal",
    "special mention": "special_mention",
    "specialmention": "special_mention",
    "watch": "special_mention",
    "关注": "special_mention",
    "关注类": "special_mention",
    "sub_standard": "substandard",
    "次级": "substandard",
    "次级类": "substandard",
    "可疑": "doubtful",
    "可疑类": "doubtful",
    "损失": "loss",
    "损失类": "loss",
    "paid_off": "repaid",
    "paid": "repaid",
    "settled": "repaid",
    "结清": "repaid",
    "已结清": "repaid",
    "还清": "repaid",
    "已还清": "repaid",
    "recovery": "recovered",
    "收回": "recovered",
    "已收回": "recovered",
    "清收": "recovered",
    "已清收": "recovered",
    "write_off": "written_off",
    "writtenoff": "written_off",
    "charged_off": "written_off",
    "charge_off": "written_off",
    "核销": "written_off",
    "已核销": "written_off",
}

ALLOWED_STATES = (
    "normal, special_mention, substandard, doubtful, loss, repaid, recovered, written_off "
    "(正常, 关注, 次级, 可疑, 损失, 结清, 收回, 核销)"
)


def normalised_state(name: object) -> str:
    """A state name lower-cased, spaces and hyphens read as ``_`` (ASCII names only)."""
    text = str(name).replace("\ufeff", "").strip().lower()
    return text.replace(" ", "_").replace("-", "_") if text.isascii() else text


_ALIASES_NORMALISED = {normalised_state(k): v for k, v in STATE_ALIASES.items()}


def canonical_state(name: object) -> str:
    """The state name of an alias (``"次级"`` -> ``"substandard"``); other names stripped."""
    key = normalised_state(name)
    return _ALIASES_NORMALISED.get(key, str(name).strip())
