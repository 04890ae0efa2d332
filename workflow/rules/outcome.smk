REPORT_INPUTS.update(
    effects=f"{TABLES}/effects.csv",
    descriptives=f"{TABLES}/descriptives.csv",
    tipping_point=f"{TABLES}/tipping_point.csv",
    trajectory=f"{FIGS}/trajectory.png",
    forest=f"{FIGS}/forest.png",
)


rule outcome:
    """Every configured outcome: the prespecified mixed model, multiple imputation, complete-case
    and tipping-point sensitivity analyses, effect modification; trajectories and forest plot."""
    input:
        linked=f"{PROC}/analysis.parquet",
        fidelity=f"{PROC}/fidelity.parquet",
        sites=f"{PROC}/sites.parquet",
    output:
        effects=report(f"{TABLES}/effects.csv", caption="../report/effects.rst", category="Outcomes"),
        descriptives=f"{TABLES}/descriptives.csv",
        tipping_point=report(
            f"{TABLES}/tipping_point.csv", caption="../report/outcomes_tipping_point.rst", category="Outcomes"
        ),
        figure=report(f"{FIGS}/trajectory.png", caption="../report/trajectory.rst", category="Outcomes"),
        forest=report(f"{FIGS}/forest.png", caption="../report/forest.rst", category="Outcomes"),
    log:
        f"{LOGS}/outcome.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("outcome"),
    script:
        "../scripts/outcome.py"
