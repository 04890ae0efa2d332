REPORT_INPUTS.update(
    effects=f"{TABLES}/effects.csv",
    descriptives=f"{TABLES}/descriptives.csv",
    trajectory=f"{FIGS}/trajectory.png",
)


rule outcome:
    """Primary outcome: descriptives and the mixed-model ANCOVA at each follow-up."""
    input:
        linked=f"{PROC}/analysis.parquet",
    output:
        effects=report(f"{TABLES}/effects.csv", caption="../report/effects.rst", category="Outcomes"),
        descriptives=f"{TABLES}/descriptives.csv",
        figure=report(f"{FIGS}/trajectory.png", caption="../report/trajectory.rst", category="Outcomes"),
    params:
        cfg=config,
    log:
        f"{LOGS}/outcome.log",
    script:
        "../scripts/outcome.py"
