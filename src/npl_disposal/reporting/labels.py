"""What a reader sees, in Chinese or English: channels, rules, columns, units, headings.

Every label of the report, the workbook, the loan tapes and the command line's tables
lives here, as data: code and files keep their English identifiers (``write_off``,
``ratio_after``) and only what a person reads is translated. :func:`labels` gives the
:class:`Labels` of a language; ``lang`` is ``"en"`` (default) or ``"zh"``.

Money units: English shows CNY millions (``CNY m``); Chinese shows 万元 (ten thousand
yuan) in tables and 亿元 (a hundred million yuan) for the headline totals, the way a
Chinese bank's reports do. Every figure is rounded to 2 decimals of its unit when shown
(Python's rounding of the float: half to even on the exact binary value), so a 万元
figure is exact to the yuan's hundred; the workbook and the CSV files keep unrounded
yuan. A user channel (``[channels.NAME]``) keeps its own name in both languages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from npl_disposal.io.schema import CHANNEL_NAMES_ZH

__all__ = ["LANGUAGES", "Labels", "check_lang", "labels", "text_columns"]

#: The languages a reader can ask for.
LANGUAGES = ("en", "zh")

#: English keeps the identifiers a user writes in options.csv and policy.toml.
_CHANNELS = {"en": {}, "zh": dict(CHANNEL_NAMES_ZH)}

_CLASSES = {
    "en": {"substandard": "substandard", "doubtful": "doubtful", "loss": "loss"},
    "zh": {"substandard": "次级", "doubtful": "可疑", "loss": "损失"},
}

#: Rules by their policy key (``ResourceRows.rule``) and the loan rules by label.
_RULES = {
    "en": {},
    "zh": {"write_off.quota": "核销额度", "bulk_transfer.capacity": "批量转让规模上限",
           "bulk_transfer.min_loans": "批量转让最低户数",
           "securitisation.max_pool": "资产证券化资产池上限",
           "securitisation.min_pool": "资产证券化资产池下限",
           "restructure.max_loans": "重组户数上限", "profit.max_loss": "利润损失上限",
           "tolerance": "普惠小微不良容忍度", "long_age": "长账龄应处置尽处置",
           "write_off_priority": "应核尽核", "write_off.priority": "应核尽核",
           "wage_pool.floor": "效益工资下降上限", "wage_pool.loss": "效益工资（不良损失）",
           "wage_pool.consider_share": "效益工资（考虑比例）",
           "wage_pool.within": "效益工资（容忍度内）",
           "write_off.quota_by_period": "分期核销额度",
           "bulk_transfer.capacity_by_period": "分期批量转让规模上限",
           "restructure.max_loans_by_period": "分期重组户数上限"},
}  # fmt: skip

#: The portfolio's codes (industries, collateral types) and the tape's template sections
#: in Chinese; a code not here is shown as it is.
_CODES_ZH = {
    "manufacturing": "制造业", "wholesale_retail": "批发和零售业", "construction": "建筑业",
    "accommodation_catering": "住宿和餐饮业", "transport_logistics": "交通运输、仓储和物流业",
    "agriculture": "农林牧渔业", "business_services": "租赁和商务服务业", "other": "其他",
    "real_estate": "房地产", "equipment": "机器设备", "receivables": "应收账款", "none": "无",
    "loan": "贷款", "counterparty": "交易对手", "collateral": "抵押物", "enforcement": "执行",
}  # fmt: skip

#: What a loan rule's label adds in brackets (compliance table).
_TAILS = {"no other channel": "无其他处置方式", "quota_first": "额度优先"}

#: The constraints table's notes (``solvers.result.NOTES``) in Chinese, by key.
_NOTES_ZH = {
    "off": "未启用：该渠道未使用，其预算不适用",
    "degenerate": "紧约束但影子价格为零：单独放宽此规则不增加价值（另有紧约束限制方案）",
    "model": "效益工资模型的约束行，不是预算",
}

#: Column labels (without unit) of every table the reader sees.
_COLUMNS = {
    "zh": {
        "item": "项目", "value": "价值", "channel": "处置方式", "loans": "户数",
        "balance": "余额", "pnl": "当年损益", "balance_share": "余额占比",
        "name": "约束", "branch": "机构", "unit": "单位", "sense": "方向", "usage": "使用量",
        "limit": "限额", "level": "启用程度", "slack": "余量", "binding": "是否紧约束",
        "usage_lp": "线性松弛使用量", "binding_lp": "线性松弛是否紧约束",
        "shadow_price": "影子价格", "fixed_costs": "固定成本", "note": "说明",
        "inclusive_npl": "普惠小微不良", "inclusive_loans": "普惠小微贷款",
        "derecognised": "出表金额", "ratio_before": "处置前不良率",
        "ratio_after": "处置后不良率", "threshold": "容忍度上限", "within": "是否达标",
        "headroom": "剩余空间", "npl_loss": "不良损失", "profit_after": "扣除后利润",
        "relief": "免于考虑的损失", "wage_pool": "效益工资总额", "written_off": "核销金额",
        "growth": "增速", "growth_restored": "核销还原后增速", "increment": "增量",
        "increment_restored": "核销还原后增量", "rule": "规则", "share": "比例",
        "loan_id": "贷款编号", "period": "期次", "plan": "方案", "gain": "方案增益",
        "gain_pct": "增益比例", "classification": "五级分类", "npl_age_months": "不良账龄（月）",
        "provision": "贷款损失准备", "ratio": "不良率", "age_bucket": "账龄区间",
        "package": "资产包", "collateral_value": "抵押物价值", "collateral_cover": "抵押覆盖率",
        "branches": "机构数", "mean_age_months": "平均账龄（月）", "kept": "留存",
        "accrued_interest": "应收利息", "coverage": "拨备覆盖率", "npl_ratio": "不良率",
        "scenario": "情景", "probability": "概率", "aversion": "风险厌恶系数 λ",
        "expected_value": "期望价值", "tail_mean": "尾部均值",
        "balance_at_disposal": "处置时入包余额",
        "whole_loans": "整笔户数", "split_loans": "部分入包户数", "npl_age_bucket": "账龄区间",
        "field": "字段", "label_en": "英文名称", "label_zh": "中文名称", "section": "模板部分",
        "source": "来源列", "unit_zh": "单位（中文）", "industry": "所属行业",
        "collateral_type": "抵押物类型",
    },
    "en": {"aversion": "aversion λ", "balance_at_disposal": "balance at disposal",
           "accrued_interest": "accrued interest", "collateral_value": "collateral value",
           "collateral_cover": "collateral cover", "mean_age_months": "mean NPL age (months)",
           "whole_loans": "whole loans", "split_loans": "split loans",
           "npl_age_bucket": "NPL age bucket", "unit_zh": "unit (Chinese)"},
}  # fmt: skip

#: Summary items (the ``summary`` table's ``item`` column) and statuses.
_ITEMS = {
    "zh": {"status": "求解状态", "mode": "模式", "objective": "方案价值", "bound": "理论上界",
           "gap": "最优间隙", "solver": "求解器", "seconds": "用时（秒）",
           "optimal": "最优", "feasible": "可行", "fractional": "可分割（线性规划）",
           "whole_loan": "整笔（混合整数规划）", "schedule": "多期方案", "all now": "全部首期处置",
           "myopic": "逐期短视方案", "CNY": "元", "loans": "户",
           # migration states
           "normal": "正常", "special_mention": "关注", "repaid": "已结清",
           "recovered": "已收回", "written_off": "已核销"},
    "en": {},
}  # fmt: skip

#: Headings, notes and sentences, by key; ``{...}`` fields are filled with ``str.format``.
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "NPL disposal plan: {source}",
        "schedule_title": "NPL disposal schedule: {source}",
        "risk": "Recovery risk",
        "risk_summary": "Expected value {expected}, tail mean {tail} (the worst {worst} of the "
                        "probability), over {n} scenarios.",
        "risk_worst": "The {n} worst scenarios",
        "risk_frontier_note": "The optimal plan at several aversions λ (fractional): expected "
                              "value given up for a better tail, and the channel mix that buys it.",
        "risk_frontier": "Risk frontier", "risk_mix": "Channel mix by aversion (% of balance)",
        "chart_risk_values": "value of the plan in a scenario ({unit})",
        "chart_probability": "probability", "chart_expected": "expected value",
        "chart_tail": "tail mean (worst {worst})", "chart_share": "share of the balance (%)",
        "chart_tail_axis": "tail mean at α={alpha} ({unit})",
        "chart_expected_axis": "expected value ({unit})",
        "meta": "{loans} loans, balance {balance}, {branches} branches; generated {when}. "
                "Money in CNY millions, ratios in percent.",
        "no_charts": "Charts are not shown: {hint}.",
        "summary": "Summary", "channel_mix": "Channel mix",
        "budgets": "Budgets and shadow prices", "tolerance": "Branch tolerance",
        "tolerance_note": "Inclusive small/micro NPL ratio per branch before and after the "
                          "plan; headroom is the inclusive NPL the branch may still keep "
                          "(negative: still to derecognise).",
        "wage_pool": "Wage pool", "add_back": "Write-off add-back",
        "no_add_back": "The branch table gives no inclusive_loans_start: no growth figures.",
        "compliance": "Compliance",
        "compliance_note": "{n} loans may not stay on the book (long ageing or write-off "
                           "priority); where they went:",
        "disposal": "Disposal by channel and branch",
        "recovery": "Recovery against NPL age",
        "shadow_only_fractional": " Shadow prices exist in fractional mode only.",
        "chart_failed": "chart '{alt}' could not be drawn: {error}",
        "yes": "yes", "no": "no", "na": "n/a",
        "period": "period {t}", "kept_through": "kept",
        "schedule_mix": "Balance disposed per channel and period",
        "schedule_mix_note": "Balance at disposal; 'kept' is kept through the horizon.",
        "tolerance_path": "Tolerance path of each branch",
        "tolerance_path_note": "Inclusive small/micro NPL ratio of each branch at each "
                               "checked period, against its threshold.",
        "timing": "What timing is worth",
        "timing_note": "The schedule against two plans of the same portfolio under the same "
                       "rules: everything disposed in period 1, and a myopic plan re-solved "
                       "period by period. Gain: the schedule's value less the plan's "
                       "(present value today).",
        "no_plan": "no plan meets every rule",
        "budget_guide": "",
        # chart texts
        "chart_mix": "Channel mix by branch", "chart_mix_y": "balance ({unit})",
        "chart_tol": "Tolerance: NPL ratio before and after the plan",
        "chart_tol_y": "inclusive NPL ratio (%)", "before": "before", "after": "after",
        "threshold": "threshold", "chart_rec": "Recovery against NPL age",
        "chart_rec_x": "NPL age (months)", "chart_rec_y": "unsecured recovery (% of claim)",
        "workout": "workout", "bulk_price": "bulk price",
        "chart_prices": "Binding budgets: shadow prices (LP relaxation)",
        "chart_prices_x": "shadow price (CNY of value per unit of budget)",
        "no_binding": "no binding budget", "per_cny": "CNY/CNY", "per_loan": "CNY/loan",
        "chart_sched": "Balance disposed per channel and period",
        "chart_sched_y": "balance at disposal ({unit})",
        "chart_path": "Inclusive NPL ratio of each branch over the horizon",
        "chart_path_x": "period", "chart_path_y": "inclusive NPL ratio (%)",
        "tapes": "Loan tapes", "package_summary": "Package summary",
        "packages": "Packages and pools for sale",
        "packages_note": "One package per sale channel (bulk transfer, securitisation, a user "
                         "channel) and period; 'npl-disposal report --tapes' writes each one's "
                         "loan tape. Collateral cover: collateral value over the balance in the "
                         "package; NPL age weighted by balance.",
        "no_packages": "The plan sells no loan: no package.",
        # command line
        "by_class": "By class", "by_age": "By NPL age", "by_branch": "By branch",
        "ratio_before_title": "Inclusive small/micro NPL ratio by branch (before disposal)",
        "cli_binding": "Binding budgets in the LP relaxation (usage and limit as policy.toml "
                       "states them; level: an on/off channel's; shadow price: CNY of value "
                       "per CNY or per loan of extra budget)",
        "cli_branches_after": "Branch tolerance and wage pool after the plan",
        "cli_tapes": "loan tapes of {n} package(s) in {folder}",
        "cli_wrote": "wrote",
        "cli_binding_names": "binding: {names}",
        "cli_plan_wrote": "wrote {files} to {out}",
        "cli_valued": "valued {n} loans: {options} eligible options written to {out}",
        "cli_frontier_wrote": "wrote {files} to {out}",
        "cli_frontier": "risk frontier at α={alpha} ({n} aversions):",
        "cli_frontier_row": "  λ={aversion} expected value {expected}, tail mean {tail} ({status})",
        "cli_migration": "Migration matrix over {months} month(s), {n} states; "
                         "absorbing: {absorbing}",
        "cli_migration_matrix": "Probabilities in % (rows: from-state, columns: to-state):",
        "cli_migration_outcomes": "Where loans end up (% within {h} months and eventually; "
                                  "expected months to absorption):",
        "cli_within": "{state} within {h}m", "cli_eventually": "{state} eventually",
        "cli_expected_months": "expected months",
        "cli_from_state": "from_state", "cli_to_state": "to_state",
        "tol_after": "Inclusive small/micro NPL tolerance after the plan",
        "tol_today": "Inclusive small/micro NPL tolerance today (before disposal)",
        "tol_outside": "{n} branch(es) outside tolerance",
        "demo_title": "npl-disposal demo: the bundled synthetic sample",
        "demo_schedule": "The same sample over four quarters (schedule_policy.toml: AMC windows "
                         "in Q1 and Q3, a securitisation issue in Q4):",
        "demo_valued": "Valued every channel of every loan: {n} eligible options",
    },
    "zh": {
        "title": "不良贷款处置方案：{source}",
        "schedule_title": "不良贷款分期处置方案：{source}",
        "risk": "回收风险",
        "risk_summary": "期望价值 {expected}，尾部均值 {tail}（概率最差的 {worst}），"
                        "共 {n} 个情景。",
        "risk_worst": "最差的 {n} 个情景",
        "risk_frontier_note": "不同风险厌恶系数 λ 下的最优方案（可分割）："
                              "为改善尾部而放弃的期望价值，以及相应的处置方式结构。",
        "risk_frontier": "风险前沿", "risk_mix": "不同风险厌恶系数下的处置方式结构（占余额 %）",
        "chart_risk_values": "各情景下的方案价值（{unit}）",
        "chart_probability": "概率", "chart_expected": "期望价值",
        "chart_tail": "尾部均值（最差 {worst}）", "chart_share": "占余额比例（%）",
        "chart_tail_axis": "α={alpha} 时的尾部均值（{unit}）",
        "chart_expected_axis": "期望价值（{unit}）",
        "meta": "贷款 {loans} 笔，余额 {balance}，机构 {branches} 家；生成于 {when}。"
                "金额单位：万元（合计为亿元），保留两位小数；比率为百分比。",
        "no_charts": "未显示图表：{hint}。",
        "summary": "概览", "channel_mix": "处置方式结构", "budgets": "预算约束与影子价格",
        "tolerance": "分支机构不良容忍度",
        "tolerance_note": "各机构处置前后的普惠型小微企业贷款不良率；剩余空间为该机构"
                          "仍可保留的普惠小微不良余额（负数表示仍需出表的金额）。",
        "wage_pool": "效益工资", "add_back": "核销还原",
        "no_add_back": "机构表未提供期初普惠小微贷款余额（inclusive_loans_start），"
                       "不计算增速。",
        "compliance": "合规情况",
        "compliance_note": "共有 {n} 笔贷款不得继续保留（长账龄或应核尽核），其去向如下：",
        "disposal": "按处置方式和机构汇总", "recovery": "回收率与不良账龄",
        "shadow_only_fractional": "影子价格仅在可分割（线性规划）模式下给出。",
        "chart_failed": "图表“{alt}”无法绘制：{error}",
        "yes": "是", "no": "否", "na": "—",
        "period": "第{t}期", "kept_through": "留存至期末",
        "schedule_mix": "各期各处置方式的处置余额",
        "schedule_mix_note": "按处置时余额计；“留存至期末”为整个期间内保留清收。",
        "tolerance_path": "各机构不良容忍度路径",
        "tolerance_path_note": "各机构在每个检查期末的普惠型小微企业贷款不良率及其容忍度上限。",
        "timing": "处置时机的价值",
        "timing_note": "在同一组合、同一规则下，与两个基准方案比较：全部于第 1 期处置；"
                       "逐期短视地重新求解。增益为本方案价值减去基准方案价值（折现至今）。",
        "no_plan": "无满足全部规则的方案",
        "budget_guide": "每条规则按 policy.toml 的口径列示：限额为政策设定值，使用量为方案"
                        "在同一口径下的数量（利润规则列示当年利润的下降，含所用渠道的固定成本）。"
                        "启用程度 1 表示启用、0 表示未启用的开关型渠道（批量转让、资产证券化等）。"
                        "余量在限额的百万分之一（或一分钱）以内即为紧约束。影子价格来自线性松弛"
                        "（贷款可分割），表示限额每增加一个单位（元或户）可增加的价值（元）。",
        "chart_mix": "各机构处置方式结构", "chart_mix_y": "余额（{unit}）",
        "chart_tol": "不良容忍度：处置前后的不良率", "chart_tol_y": "普惠小微不良率（%）",
        "before": "处置前", "after": "处置后", "threshold": "容忍度上限",
        "chart_rec": "回收率与不良账龄", "chart_rec_x": "不良账龄（月）",
        "chart_rec_y": "无担保回收率（占债权%）", "workout": "自行清收",
        "bulk_price": "批量转让价格",
        "chart_prices": "紧约束的影子价格（线性松弛）",
        "chart_prices_x": "影子价格（每单位预算增加的价值，元）", "no_binding": "无紧约束",
        "per_cny": "元/元", "per_loan": "元/户",
        "chart_sched": "各期各处置方式的处置余额", "chart_sched_y": "处置时余额（{unit}）",
        "chart_path": "各机构普惠小微不良率路径", "chart_path_x": "期次",
        "chart_path_y": "普惠小微不良率（%）",
        "tapes": "贷款明细清单", "package_summary": "资产包概要",
        "packages": "拟转让资产包与证券化资产池",
        "packages_note": "每个出售渠道（批量转让、资产证券化、自定义渠道）每期一个资产包；"
                         "“npl-disposal report --tapes”为每个资产包写出贷款明细清单。"
                         "抵押覆盖率为抵押物价值与入包余额之比；平均账龄按余额加权。",
        "no_packages": "本方案未出售贷款，无资产包。",
        # command line
        "by_class": "按五级分类", "by_age": "按不良账龄", "by_branch": "按机构",
        "ratio_before_title": "各机构普惠型小微企业贷款不良率（处置前）",
        "cli_binding": "线性松弛中的紧约束（使用量与限额按 policy.toml 口径；启用程度：开关型渠道；"
                       "影子价格：每增加一元或一户预算可增加的价值，元）",
        "cli_branches_after": "处置后各机构不良容忍度与效益工资",
        "cli_portfolio": "{source}：不良贷款 {n} 笔，余额 {balance}，贷款损失准备 {provision}\n"
                         "小微企业贷款占 {small}，普惠型小微占 {inclusive}；"
                         "不良账龄 36 个月及以上 {old} 笔",
        "cli_branches": "机构 {n} 家",
        "cli_plan": "方案求解{status}，模式为{mode}，贷款 {n} 笔：价值 {value}，上界 {bound}，"
                    "最优间隙 {gap}（{solver}，{seconds} 秒）",
        "cli_tapes": "{n} 个资产包的贷款明细清单位于 {folder}",
        "cli_wrote": "已写出",
        "cli_binding_names": "紧约束：{names}",
        "cli_plan_wrote": "已将 {files} 写入 {out}",
        "cli_valued": "已估值 {n} 笔贷款：{options} 个可选处置方式写入 {out}",
        "cli_frontier_wrote": "已将 {files} 写入 {out}",
        "cli_frontier": "风险前沿（α={alpha}，{n} 个风险厌恶系数）：",
        "cli_frontier_row": "  λ={aversion}：期望价值 {expected}，尾部均值 {tail}（{status}）",
        "cli_migration": "迁徙矩阵：{months} 个月，{n} 个状态；吸收状态：{absorbing}",
        "cli_migration_matrix": "迁徙概率（%；行为期初状态，列为期末状态）：",
        "cli_migration_outcomes": "贷款去向（{h} 个月内及最终的概率，%；进入吸收状态的预期月数）：",
        "cli_within": "{h}个月内{state}", "cli_eventually": "最终{state}",
        "cli_expected_months": "预期月数",
        "cli_from_state": "期初状态", "cli_to_state": "期末状态",
        "tol_after": "处置后普惠型小微企业贷款不良容忍度",
        "tol_today": "当前（处置前）普惠型小微企业贷款不良容忍度",
        "tol_outside": "超出容忍度的机构 {n} 家",
        "demo_title": "npl-disposal 演示：内置的模拟样本",
        "demo_schedule": "同一样本按四个季度分期处置（schedule_policy.toml：第1、3季度为"
                         "资产管理公司批量转让窗口，第4季度发行一期资产证券化）：",
        "demo_valued": "已对每笔贷款的每种处置方式估值：可选方案 {n} 项",
        "demo_problem": "贷款 {n} 笔 × 处置方式 {m} 种（可选方案 {options} 项）；"
                        "必须出表（长账龄或应核尽核）{forced} 笔",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Labels:
    """The labels of one language (build with :func:`labels`)."""

    lang: str
    channels: Mapping[str, str] = field(repr=False)
    classes: Mapping[str, str] = field(repr=False)
    rules: Mapping[str, str] = field(repr=False)
    columns: Mapping[str, str] = field(repr=False)
    items: Mapping[str, str] = field(repr=False)
    text: Mapping[str, str] = field(repr=False)

    @property
    def zh(self) -> bool:
        """Whether this is Chinese."""
        return self.lang == "zh"

    # -- units
    @property
    def money_unit(self) -> str:
        """The unit of money in tables: ``CNY m`` or ``万元``."""
        return "万元" if self.zh else "CNY m"

    @property
    def money_scale(self) -> float:
        """Yuan per unit of :attr:`money_unit`."""
        return 1e4 if self.zh else 1e6

    @property
    def total_unit(self) -> str:
        """The unit of headline totals: ``CNY m`` or ``亿元``."""
        return "亿元" if self.zh else "CNY m"

    @property
    def total_scale(self) -> float:
        """Yuan per unit of :attr:`total_unit`."""
        return 1e8 if self.zh else 1e6

    def money(self, yuan: float, total: bool = False) -> str:
        """``yuan`` in the table (or headline) unit, 2 decimals, with the unit."""
        scale, unit = (self.total_scale, self.total_unit) if total else (
            self.money_scale, self.money_unit)  # fmt: skip
        amount = f"{float(yuan) / scale + 0.0:,.2f}"
        return f"{amount} {unit}" if self.zh else f"CNY {amount}m"

    # -- words
    def t(self, key: str, **fields: Any) -> str:
        """The sentence ``key``, its ``{fields}`` filled."""
        text = self.text[key] if key in self.text else _TEXT["en"][key]
        return text.format(**fields) if fields else text

    def channel(self, name: Any) -> str:
        """A channel's label (a user channel keeps its name)."""
        return self.channels.get(str(name), str(name))

    def rule(self, name: Any) -> str:
        """A rule's label by policy key or loan-rule label (``a + b`` joined; unknown: as is)."""
        text = str(name)
        if " + " in text:
            return " + ".join(self.rule(part) for part in text.split(" + "))
        head, sep, tail = text.partition(" (")
        if sep and self.zh:
            inner = tail.rstrip(")")
            return f"{self.rules.get(head, head)}（{_TAILS.get(inner, inner)}）"
        return self.rules.get(head, head) + (sep + tail if sep else "")

    def constraint(self, name: Any, rule: Any, branch: Any = None) -> str:
        """A constraint's label: its rule's label (branch, period), or its own name if unknown.

        A schedule's names end in ``@T`` (period T) or ``@yearN``: ``（第T期）``, ``（第N年）``.
        """
        if not self.zh or str(rule) not in self.rules:
            return str(name)
        shown = self.rules[str(rule)]
        if isinstance(branch, str) and branch:
            shown += f"[{branch}]"
        _, at, when = str(name).rpartition("@")
        if at and when.startswith("year") and when[4:].isdigit():
            shown += f"（第{when[4:]}年）"
        elif at and when.isdigit():
            shown += f"（第{when}期）"
        return shown

    def column(self, name: str, unit: str = "") -> str:
        """A column's header with its unit: ``balance (CNY m)``, ``余额（万元）``."""
        shown = self.columns.get(name, name)
        if not unit:
            return shown
        return f"{shown}（{unit}）" if self.zh else f"{shown} ({unit})"

    def note(self, text: Any) -> str:
        """A note of the constraints table (``solvers.result.NOTES``) in this language."""
        if not self.zh or not isinstance(text, str) or not text:
            return "" if not isinstance(text, str) else text
        from npl_disposal.solvers.result import NOTES

        keys = {v: k for k, v in NOTES.items()}
        return _NOTES_ZH.get(keys.get(text, ""), text)

    def item(self, name: Any) -> str:
        """A summary item, a status or a mode."""
        return self.items.get(str(name), str(name))

    def classification(self, name: Any) -> str:
        """A loan class (``substandard`` -> ``次级``)."""
        return self.classes.get(str(name), str(name))

    def age(self, bucket: Any) -> str:
        """An NPL age bucket (``12-24m`` -> ``12-24个月``)."""
        text = str(bucket)
        return text.replace("m", "个月") if self.zh else text

    def code(self, value: Any) -> str:
        """A portfolio code (industry, collateral type) in this language; unknown: as is."""
        return _CODES_ZH.get(str(value), str(value)) if self.zh else str(value)

    def joined(self, parts: Any) -> str:
        """``a and b`` / ``a、b``."""
        return ("、" if self.zh else " and ").join(str(p) for p in parts)

    def flag(self, value: Any) -> str:
        """Yes or no."""
        return self.t("yes") if bool(value) else self.t("no")

    def period(self, t: int, last: int) -> str:
        """``period 3`` / ``第3期``; a period after ``last`` is kept through the horizon."""
        return self.t("kept_through") if int(t) > last else self.t("period", t=int(t))


def text_columns(text: str) -> int:
    """The columns ``text`` takes: a Chinese (wide or full-width) character 2, any other 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def check_lang(lang: str) -> str:
    """``lang`` if it is one of :data:`LANGUAGES`; else ValueError naming them."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    return lang


def labels(lang: str = "en") -> Labels:
    """The :class:`Labels` of ``lang`` (``"en"`` or ``"zh"``)."""
    check_lang(lang)
    return Labels(lang, _CHANNELS[lang], _CLASSES[lang], _RULES[lang], _COLUMNS[lang],
                  _ITEMS[lang], _TEXT[lang])  # fmt: skip
