# A non-randomised comparison (design.allocation: non_randomised) adds the propensity-score
# weighted analysis (analysis.propensity) to the outcome stage.
NON_RANDOMISED = config["design"]["allocation"] == "non_randomised"
PROPENSITY_OUTPUTS = (
    dict(
        propensity_model=f"{TABLES}/propensity_model.csv",
        propensity_balance=f"{TABLES}/propensity_balance.csv",
        propensity_effects=f"{TABLES}/propensity_effects.csv",
        propensity_summary=f"{TABLES}/propensity_summary.csv",
        love_plot=f"{FIGS}/love_plot.png",
    )
    if NON_RANDOMISED
    else {}
)

REPORT_INPUTS.update(
    **PROPENSITY_OUTPUTS,
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
        **{
            k: report(v, caption="../report/propensity.rst", category="Non-randomised comparison")
            for k, v in PROPENSITY_OUTPUTS.items()
        },
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
