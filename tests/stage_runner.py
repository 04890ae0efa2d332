"""Run the pipeline's stages in this process, without Snakemake, as the rules call them.

``stage_files(cfg, work)`` lays out each stage's named inputs and outputs under ``work`` with
the rules' names (workflow/rules/*.smk); ``run_stage`` calls the stage's ``run`` inside
``logged`` (the rule's log file, progress on stderr) exactly as its workflow/scripts/<stage>.py
does, with the sub-config the rule passes (:func:`rule_config`) unless another ``cfg`` is given.
"""

from __future__ import annotations

from pathlib import Path

from analysis.blinding import blinded_config
from analysis.pseudonym import key_fingerprint
from analysis.reporting.notebook import NOTEBOOK
from analysis.stages import config_keys

TABLES = ("sites", "participants", "screening", "responses", "service_use", "fidelity", "adverse_events")


def stage_files(cfg: dict, work: Path) -> dict[str, tuple[dict, dict]]:
    """{stage: (inputs, outputs)} with the workflow's file names under ``work``."""
    proc, rep = work / "data/processed" / cfg["trial_id"], work / "reports" / cfg["trial_id"]
    tab, fig = rep / "tables", rep / "figures"
    p = {t: str(proc / f"{t}.parquet") for t in TABLES}
    files = {
        "ingest": ({}, {**p, "queries": str(proc / "ingest_queries.csv"), "exclusions": str(proc / "exclusions.csv"),
                        "collected": str(proc / "collected.csv"), "manifest": str(proc / "raw_manifest.csv"),
                        "pseudonyms": str(proc / "pseudonyms.parquet")}),
        "score": (dict(responses=p["responses"], participants=p["participants"]),
                  dict(scores=str(proc / "scores.parquet"), queries=str(proc / "scoring_queries.csv"),
                       summary=str(tab / "scoring_summary.csv"), reliability=str(tab / "reliability.csv"))),
        "link": (dict(participants=p["participants"], responses=p["responses"], scores=str(proc / "scores.parquet"),
                      queries=[str(proc / "ingest_queries.csv"), str(proc / "scoring_queries.csv")],
                      pseudonyms=str(proc / "pseudonyms.parquet"), exclusions=str(proc / "exclusions.csv"),
                      manifest=str(proc / "raw_manifest.csv")),
                 dict(linked=str(proc / "analysis.parquet"), queries=str(rep / "data_queries.csv"),
                      exclusions=str(tab / "exclusions.csv"))),
        "feasibility": (dict(sites=p["sites"], participants=p["participants"], screening=p["screening"],
                             linked=str(proc / "analysis.parquet"), fidelity=p["fidelity"],
                             adverse_events=p["adverse_events"], collected=str(proc / "collected.csv")),
                        {**{k: str(tab / f"{k}.csv") for k in ("feasibility", "progression", "safety", "table1")},
                         "by_site": str(tab / "recruitment_by_site.csv"), "flow": str(tab / "flow_counts.csv"),
                         "consort_svg": str(fig / "consort.svg"), "consort_png": str(fig / "consort.png"),
                         "figure": str(fig / "recruitment.png"), "retention": str(fig / "retention_completion.png")}),
        "outcome": (dict(linked=str(proc / "analysis.parquet"), fidelity=p["fidelity"], sites=p["sites"]),
                    dict(effects=str(tab / "effects.csv"), descriptives=str(tab / "descriptives.csv"),
                         tipping_point=str(tab / "tipping_point.csv"), figure=str(fig / "trajectory.png"),
                         forest=str(fig / "forest.png"),
                         **({k: str(tab / f"{k}.csv") for k in ("propensity_model", "propensity_balance",
                                                                  "propensity_effects", "propensity_summary")}
                            | {"love_plot": str(fig / "love_plot.png")}
                            if cfg["design"]["allocation"] == "non_randomised" else {}))),
        "economics": (dict(linked=str(proc / "analysis.parquet"), service_use=p["service_use"],
                           participants=p["participants"]),
                      {**{k: str(tab / f"{k}.csv") for k in ("cea", "ceac", "unit_costs")},
                       "by_arm": str(tab / "cea_by_arm.csv"), "replicates": str(tab / "cea_bootstrap.parquet"),
                       "participants": str(proc / "economics.parquet"), "ce_plane": str(fig / "ce_plane.png"),
                       "ceac_figure": str(fig / "ceac.png")}),
    }
    files["value"] = (dict(effects=str(tab / "effects.csv"), linked=str(proc / "analysis.parquet"),
                           participants=p["participants"]),
                      {k: str(tab / f"vfm_{f}.csv") for k, f in (("buildup", "cost_buildup"),
                                                                 ("per_participant", "cost_per_participant"),
                                                                 ("per_point", "cost_per_point"),
                                                                 ("wellby", "wellby"))})
    files["planning"] = (dict(linked=str(proc / "analysis.parquet"), participants=p["participants"], sites=p["sites"],
                              collected=str(proc / "collected.csv"),
                              **({"economics": files["economics"][1]["participants"]}
                                 if cfg["economics"]["enabled"] and not cfg.get("blinded") else {})),
                         dict(inputs=str(tab / "planning_inputs.csv"), sample_size=str(tab / "sample_size.csv"),
                              **({"figure": str(fig / "sample_size.png")}
                                 if cfg["design"]["type"] != "single_arm" else {})))
    power = proc / "power"
    setup = dict(params=str(power / "setup.json"), pool=str(power / "pool.parquet"))
    files["power_setup"] = (dict(linked=str(proc / "analysis.parquet"), sample_size=str(tab / "sample_size.csv"),
                                 inputs=str(tab / "planning_inputs.csv")), setup)
    files["power_batch"] = (setup, dict(batch=str(power / "step0" / "batch0.csv")))
    files["power_gather"] = (dict(params=setup["params"], batches=[str(power / "step0" / "batch0.csv")]),
                             dict(table=str(tab / "power_simulation.csv"), figure=str(fig / "power_curve.png")))
    report_inputs = dict(
        queries=files["link"][1]["queries"],
        scoring_summary=files["score"][1]["summary"], reliability=files["score"][1]["reliability"],
        feasibility=files["feasibility"][1]["feasibility"], recruitment=files["feasibility"][1]["figure"],
        progression=files["feasibility"][1]["progression"], table1=files["feasibility"][1]["table1"],
        consort=files["feasibility"][1]["consort_png"], retention=files["feasibility"][1]["retention"],
        safety=files["feasibility"][1]["safety"],
        effects=files["outcome"][1]["effects"], descriptives=files["outcome"][1]["descriptives"],
        tipping_point=files["outcome"][1]["tipping_point"], trajectory=files["outcome"][1]["figure"],
        forest=files["outcome"][1]["forest"],
        **{k: v for k, v in files["outcome"][1].items() if k.startswith("propensity_") or k == "love_plot"})
    if cfg["economics"]["enabled"]:
        e = files["economics"][1]
        report_inputs.update(cea=e["cea"], ceac=e["ceac"], cea_by_arm=e["by_arm"], unit_costs=e["unit_costs"],
                             ce_plane=e["ce_plane"], ceac_figure=e["ceac_figure"])
    if cfg["value_for_money"]["enabled"]:  # as workflow/rules/value.smk registers them
        report_inputs.update({f"vfm_{k}": v for k, v in files["value"][1].items()})
    if cfg["planning"]["enabled"]:  # as workflow/rules/planning.smk registers them
        pl = files["planning"][1]
        report_inputs.update(planning_inputs=pl["inputs"], sample_size=pl["sample_size"],
                             **({"sample_size_figure": pl["figure"]} if "figure" in pl else {}))
    files["report"] = (report_inputs, dict(html=str(rep / "report.html"), manifest=str(rep / "manifest.json"),
                                           notebook=str(rep / "report.ipynb")))
    files["audience_report"] = ({**report_inputs, "flow": files["feasibility"][1]["flow"],
                                 "manifest": str(rep / "manifest.json")},
                                {a: str(rep / a / "report.html") for a in ("funder", "ethics")})
    return files


def raw_files(cfg: dict) -> list[str]:
    """The raw files the report rule hashes (common.smk's ``raw_inputs``)."""
    d = cfg["data"]
    names = [d["participants"]] + [w["file"] for w in d["waves"]]
    names += [d[k] for k in ("sites", "screening", "service_use", "fidelity", "adverse_events") if d.get(k)]
    return [f"{d['raw_dir']}/{n}" for n in dict.fromkeys(names)]


def rule_config(stage: str, full_cfg: dict) -> dict:
    """The config the stage's rule passes (workflow/rules/common.smk ``config_params``): ingest
    gets the trial's config, later stages the (possibly blinded) analysis config, each cut down
    to the keys it reads."""
    stage = "power" if stage.startswith("power_") else stage
    return config_keys.stage_config(stage, full_cfg if stage == "ingest" else blinded_config(full_cfg))


def run_stage(stage: str, full_cfg: dict, work: Path, key: bytes, cfg: dict | None = None,
              audience: str = "funder") -> tuple[dict, dict]:
    """Run one stage as its rule does; return its (inputs, outputs).  The power stages are
    ``power_setup``, ``power_batch`` (step 0, batch 0 only) and ``power_gather``.  ``full_cfg`` is the
    validated config (as after common.smk's validation, before blinding)."""
    from analysis.stages import logged
    name = f"report_{audience}" if stage == "audience_report" else stage
    with logged(work / "logs" / full_cfg["trial_id"] / f"{name}.log"):
        return _run(stage, full_cfg, work, key, rule_config(stage, full_cfg) if cfg is None else cfg, audience)


def _run(stage, full_cfg, work, key, cfg, audience):
    from analysis.stages import economics, feasibility, ingest, link, outcome, planning, power, report, score, value
    i, o = stage_files(full_cfg, work)[stage]
    if stage == "ingest":
        ingest.run(cfg, i, o, raw_dir=full_cfg["data"]["raw_dir"], key=key)
    elif stage in ("score", "feasibility", "outcome", "economics", "value", "planning"):
        {"score": score, "feasibility": feasibility, "outcome": outcome, "economics": economics, "value": value,
         "planning": planning}[stage].run(cfg, i, o)
    elif stage == "link":
        link.run(cfg, i, o, key_fingerprint=key_fingerprint(key))
    elif stage.startswith("power_"):
        power.run(cfg, i, o, rule=stage, wildcards={"step": "0", "batch": "0"})
    elif stage == "report":
        report.run(cfg, {**i, "raw": raw_files(full_cfg), "notebook": str(NOTEBOOK)}, o,
                   report_dir=str(Path(o["html"]).parent), key_fingerprint=key_fingerprint(key))
    elif stage == "audience_report":
        report.run_audience(cfg, {**i, "notebook": str(NOTEBOOK)}, {"html": o[audience]}, audience=audience)
    else:  # pragma: no cover
        raise ValueError(stage)
    return i, o


def run_all(full_cfg: dict, work: Path, key: bytes, notebooks: bool = True) -> dict[str, set]:
    """Every stage in workflow order, each given its rule's config wrapped so it records the
    keys read (tests/config_tracking.py); returns {stage: key paths read}.

    With ``notebooks`` the report stage and the funder report run as in the workflow; what
    their notebook kernel reads cannot be seen from here, so the report sections are also
    rendered in this process, for every audience, and those reads are recorded under
    ``report`` and ``audience_report``."""
    from analysis.reporting import AUDIENCES, render_report
    from config_tracking import TrackedConfig
    reads: dict[str, set] = {}
    stages = ["ingest", "score", "link", "feasibility", "outcome"]
    if full_cfg["economics"]["enabled"] and not full_cfg.get("blinded"):
        stages.append("economics")
    if full_cfg["value_for_money"]["enabled"]:
        stages.append("value")
    if full_cfg["planning"]["enabled"]:
        stages.append("planning")
        if full_cfg["design"]["type"] != "single_arm" and full_cfg["planning"]["target_difference"] is not None:
            stages += ["power_setup", "power_batch", "power_gather"]
    for stage in stages:
        cfg = TrackedConfig(rule_config(stage, full_cfg))
        run_stage(stage, full_cfg, work, key, cfg=cfg)
        name = "power" if stage.startswith("power_") else stage
        reads.setdefault(name, set()).update(cfg.reads)
    files = stage_files(full_cfg, work)
    manifest = files["report"][1]["manifest"]
    if notebooks:  # they pass the whole config they get to the kernel, which reads from it
        run_stage("report", full_cfg, work, key)
        run_stage("audience_report", full_cfg, work, key, audience="funder")
    else:  # the manifest the provenance section reads
        from analysis.manifest import build_manifest, write_manifest
        Path(manifest).parent.mkdir(parents=True, exist_ok=True)
        write_manifest(build_manifest(rule_config("report", full_cfg), raw_files(full_cfg),
                                      str(Path(manifest).parent), key_fingerprint=key_fingerprint(key)), manifest)
    for audience in AUDIENCES:
        stage = "report" if audience == "statistician" else "audience_report"
        cfg = TrackedConfig(rule_config(stage, full_cfg))
        inputs = files[stage][0] if stage == "audience_report" else {**files["report"][0], "manifest": manifest}
        render_report(cfg, inputs, audience)
        reads.setdefault(stage, set()).update(cfg.reads)
    return reads
