"""Economics stage: costs, QALYs, the incremental analysis with its bootstrap, and figures."""

from __future__ import annotations

import pandas as pd

from analysis import economics, progress
from analysis.io import write_bytes, write_parquet, write_table
from analysis.stages._common import log, read_linked


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    econ = cfg["economics"]
    design = cfg["design"]
    linked = read_linked(inputs["linked"])
    service_use = pd.read_parquet(inputs["service_use"])
    participants = pd.read_parquet(inputs["participants"])
    # a non-randomised comparison: weighted by the outcome analysis's propensity score (same estimand)
    weighting = None
    if design.get("allocation", "randomised") == "non_randomised":
        weighting = {k: cfg["propensity"][k] for k in ("covariates", "estimand", "stabilise", "trim")}
    pdata = economics.participant_table(linked, service_use, participants, econ,
                                        intervention_arm=design["intervention_arm"],
                                        ps_covariates=weighting["covariates"] if weighting else ())
    for note in pdata.notes:
        log.info("economics: %s", note)
    flagged = pdata.unit_costs[pdata.unit_costs.verification.astype(str) != "PUB"]
    for r in flagged.itertuples():
        log.warning("unit cost %s (%s, %s prices) is graded %s: check it against its source",
                    r.item_id, r.unit_cost, r.price_year, r.verification)
    clustered = design["type"] == "cluster"
    n_sites = int(pdata.table.site_id.nunique())
    if clustered and n_sites <= 6 and econ["bootstrap"].get("cluster_correction", "none") == "none":
        log.warning("economics: %d sites: two-stage percentile intervals can be too narrow when costs cluster "
                    "(docs/methods.md, 'Few sites'); consider economics.bootstrap.cluster_correction: shrinkage_t",
                    n_sites)
    with progress.task(f"cost-effectiveness ({econ['missing_data'].replace('_', ' ')}, "
                       f"{econ['bootstrap']['replicates']} bootstrap replicates)"):
        res = economics.cost_effectiveness(pdata, econ, seed=cfg["seed"], clustered=clustered,
                                           level=cfg["outcomes"]["confidence_level"], weighting=weighting)
    main = res["cea"][res["cea"].analysis == "cea_qaly"].set_index("measure")
    log.info("economics: missing data by %s; delta cost %.2f, delta QALY %.5f, n = %d, %s; %d replicates",
             econ["missing_data"], main.estimate["delta_cost"], main.estimate["delta_qaly"],
             main.n["delta_cost"], res["cea"].bootstrap.iloc[0], econ["bootstrap"]["replicates"])
    for an, (f_cost, f_effect) in res.get("fmi", {}).items():
        log.info("economics: %s fraction of missing information: cost %.3f, effect %.3f", an, f_cost, f_effect)
    write_parquet(pdata.table, outputs["participants"])
    write_table(res["cea"], outputs["cea"])
    write_table(res["ceac"], outputs["ceac"])
    write_table(res["by_arm"], outputs["by_arm"])
    write_table(pdata.unit_costs, outputs["unit_costs"])
    write_parquet(res["replicates"], outputs["replicates"])
    thresholds = econ["thresholds"] or economics.DEFAULT_THRESHOLDS
    reps = res["replicates"]
    if "set_aside" in reps:  # weighted: the replicates without overlap are not part of the uncertainty
        n_all = len(reps)
        reps = reps[~reps.set_aside]
        if n_all - len(reps) > economics.SET_ASIDE_WARNING * n_all:
            log.warning("economics: %d of %d bootstrap replicates set aside for lack of overlap in the score "
                        "model (cea.csv, bootstrap column)", n_all - len(reps), n_all)
    write_bytes(economics.ce_plane_png(reps.delta_effect_cea_qaly.to_numpy(), reps.delta_cost_cea_qaly.to_numpy(),
                                       (main.estimate["delta_qaly"], main.estimate["delta_cost"]), thresholds,
                                       replicate_label=("draws (model-based)" if weighting is not None and
                                                        econ.get("weighted_interval", "model") == "model"
                                                        else "bootstrap replicates")),
                outputs["ce_plane"])
    write_bytes(economics.ceac_png(res["ceac"], thresholds), outputs["ceac_figure"])
