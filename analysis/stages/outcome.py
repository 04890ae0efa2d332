"""Outcome stage: descriptives, the prespecified model for every configured outcome, multiple
imputation and sensitivity analyses, effect modification, trajectory and forest figures."""

from __future__ import annotations

import pandas as pd

from analysis import figures, outcomes
from analysis.config import primary_timepoint
from analysis.blinding import relabel_results
from analysis.io import write_bytes, write_table
from analysis.stages._common import log, read_linked


def outcome_list(cfg: dict) -> list[str]:
    """The primary outcome, then the secondary ones (each once)."""
    return list(dict.fromkeys([cfg["primary"]["outcome"]] + list(cfg["outcomes"]["secondary"])))


def run(cfg: dict, linked: str, out: dict[str, str], fidelity: str | None = None,
        sites: str | None = None) -> None:
    lk = read_linked(linked)
    tables = {}
    for name, path in (("fidelity", fidelity), ("sites", sites)):
        if path:
            tables[name] = pd.read_parquet(path)
    ptp = primary_timepoint(cfg)
    level = cfg["outcomes"]["confidence_level"]
    descs, effs, tips = [], [], []
    for y in outcome_list(cfg):
        if y not in lk:
            raise KeyError(f"config key primary.outcome / outcomes.secondary: {y!r} is not a column "
                           f"of the linked table; available: "
                           f"{sorted(c for c in lk.columns if not c.endswith('_bl'))}")
        log.info("outcome %s: fitting the prespecified model and sensitivity analyses", y)
        descs.append(outcomes.describe(lk, y, level=level))
        eff, tip = outcomes.analyse_outcome(lk, cfg, y, ptp, tables, log=log)
        effs.append(eff)
        tips.append(tip)
    eff = pd.concat(effs, ignore_index=True)
    desc = pd.concat(descs, ignore_index=True)
    tip = pd.concat(tips, ignore_index=True) if tips else pd.DataFrame(columns=outcomes.TIPPING_COLUMNS)
    for r in eff[eff.warnings.fillna("") != ""].drop_duplicates(["outcome", "analysis", "warnings"]).itertuples():
        log.warning("model note (%s, %s): %s", r.outcome, r.analysis, r.warnings)
    labels = cfg["outcomes"]["labels"]
    write_table(desc, out["descriptives"])
    write_table(relabel_results(eff, cfg), out["effects"])
    write_table(relabel_results(tip.reindex(columns=outcomes.TIPPING_COLUMNS).infer_objects(), cfg),
                out["tipping_point"])
    write_bytes(figures.trajectories_png(desc, cfg["design"]["arm_labels"], labels), out["figure"])
    write_bytes(figures.forest_png(eff, labels), out["forest"])
