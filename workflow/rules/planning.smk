# Planning the definitive trial (analysis.planning; docs/methods.md): planning inputs with
# their uncertainty, the analytic sample size over a grid of assumptions and its figure, and
# (workflow/rules/power.smk) simulation-based power.
if config["planning"]["enabled"]:
    PLANNING_FIGURE = config["design"]["type"] != "single_arm"

    REPORT_INPUTS.update(
        planning_inputs=f"{TABLES}/planning_inputs.csv",
        sample_size=f"{TABLES}/sample_size.csv",
        **({"sample_size_figure": f"{FIGS}/sample_size.png"} if PLANNING_FIGURE else {}),
    )

    rule planning:
        """Planning inputs from the pilot (SD with Browne's UCL, correlation, ICCs, site sizes,
        retention, recruitment, economic inputs) and the definitive trial's sample size grid."""
        input:
            linked=f"{PROC}/analysis.parquet",
            participants=f"{PROC}/participants.parquet",
            sites=f"{PROC}/sites.parquet",
            collected=f"{PROC}/collected.csv",
            **({"economics": f"{PROC}/economics.parquet"} if config["economics"]["enabled"] else {}),
        output:
            inputs=report(f"{TABLES}/planning_inputs.csv", caption="../report/planning_inputs.rst",
                          category="Planning"),
            sample_size=report(f"{TABLES}/sample_size.csv", caption="../report/sample_size.rst",
                               category="Planning"),
            **({"figure": report(f"{FIGS}/sample_size.png", caption="../report/sample_size_figure.rst",
                                 category="Planning")} if PLANNING_FIGURE else {}),
        params:
            cfg=config,
        log:
            f"{LOGS}/planning.log",
        script:
            "../scripts/planning.py"
