# Value for money of a single-arm (pre-post) study; runs only when value_for_money.enabled is true
# (the config refuses it for the other designs): cost build-up, cost per participant, cost per
# point of the uncontrolled before-after change and the WELLBY valuation (analysis/value.py).
if config["value_for_money"]["enabled"]:

    VALUE_OUTPUTS = dict(
        vfm_buildup=f"{TABLES}/vfm_cost_buildup.csv",
        vfm_per_participant=f"{TABLES}/vfm_cost_per_participant.csv",
        vfm_per_point=f"{TABLES}/vfm_cost_per_point.csv",
        vfm_wellby=f"{TABLES}/vfm_wellby.csv",
    )
    REPORT_INPUTS.update(**VALUE_OUTPUTS)

    rule value:
        """Cost build-up, cost per participant enrolled and completing, cost per point of the
        before-after change (none when its interval includes no change) and the WELLBY value."""
        input:
            effects=f"{TABLES}/effects.csv",
            linked=f"{PROC}/analysis.parquet",
            participants=f"{PROC}/participants.parquet",
        output:
            buildup=report(VALUE_OUTPUTS["vfm_buildup"], caption="../report/value.rst", category="Value for money"),
            per_participant=VALUE_OUTPUTS["vfm_per_participant"],
            per_point=report(VALUE_OUTPUTS["vfm_per_point"], caption="../report/value.rst", category="Value for money"),
            wellby=report(VALUE_OUTPUTS["vfm_wellby"], caption="../report/value.rst", category="Value for money"),
        log:
            f"{LOGS}/value.log",
        conda:
            SOFTWARE_ENV
        params:
            **config_params("value"),
        script:
            "../scripts/value.py"
