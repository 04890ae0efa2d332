# Planning the definitive trial (analysis.planning; docs/methods.md): planning inputs with
# their uncertainty, the analytic sample size over a grid of assumptions and its figure, and
# (workflow/rules/power.smk) simulation-based power.
if config["planning"]["enabled"]:
    PLANNING_FIGURE = config["design"]["type"] != "single_arm"
    PLANNING_FIGURE_OUTPUT = (
        {"figure": report(f"{FIGS}/sample_size.png", caption="../report/sample_size_figure.rst", category="Planning")}
        if PLANNING_FIGURE
        else {}
    )

    REPORT_INPUTS.update(
        planning_inputs=f"{TABLES}/planning_inputs.csv",
        sample_size=f"{TABLES}/sample_size.csv",
        **({"sample_size_figure": f"{FIGS}/sample_size.png"} if PLANNING_FIGURE else {}),
    )

    rule planning:
        """Planning inputs from the pilot (SD with Browne's UCL, correlation, ICCs, site sizes,
        retention, recruitment, economic inputs) and the definitive trial's sample size grid."""
        input:
            **({"economics": f"{PROC}/economics.parquet"} if config["economics"]["enabled"] else {}),
            linked=f"{PROC}/analysis.parquet",
            participants=f"{PROC}/participants.parquet",
            sites=f"{PROC}/sites.parquet",
            collected=f"{PROC}/collected.csv",
        output:
            **PLANNING_FIGURE_OUTPUT,
            inputs=report(f"{TABLES}/planning_inputs.csv", caption="../report/planning_inputs.rst", category="Planning"),
            sample_size=report(f"{TABLES}/sample_size.csv", caption="../report/sample_size.rst", category="Planning"),
        log:
            f"{LOGS}/planning.log",
        conda:
            SOFTWARE_ENV
        params:
            **config_params("planning"),
        script:
            "../scripts/planning.py"


# Simulation-based power (analysis.power_sim): definitive trials simulated from the pilot-fitted
# primary model, refitted with the primary analysis.  Each batch of replicates at each sample
# size is one job, so the simulation fans out over local cores (--cores) or cluster nodes
# (--profile profiles/slurm); replicate r at size s has its own seed, so the gathered table is
# the same whatever the batching or executor.  `snakemake power` runs it on demand;
# planning.simulation.enabled adds it to every report.
POWER_OK = (
    config["planning"]["enabled"]
    and config["design"]["type"] != "single_arm"
    and config["planning"]["target_difference"] is not None
)
if POWER_OK:
    SIM = config["planning"]["simulation"]
    POWER_STEPS = range(len(SIM["sizes"]) if SIM["sizes"] else 5)
    POWER_BATCHES = range(-(-SIM["replicates"] // SIM["batch_size"]))
    POWER_TABLE = f"{TABLES}/power_simulation.csv"
    POWER_FIGURE = f"{FIGS}/power_curve.png"
    if SIM["enabled"]:
        REPORT_INPUTS.update(power_simulation=POWER_TABLE, power_curve=POWER_FIGURE)

    localrules:
        power,

    rule power:
        """Target: simulation-based power of the definitive trial (table and power curve)."""
        input:
            POWER_TABLE,
            POWER_FIGURE,

    rule power_setup:
        """Fit the pilot's primary model; the simulation's parameters and the pool of baseline rows."""
        input:
            linked=f"{PROC}/analysis.parquet",
            sample_size=f"{TABLES}/sample_size.csv",
            inputs=f"{TABLES}/planning_inputs.csv",
        output:
            params=f"{PROC}/power/setup.json",
            pool=f"{PROC}/power/pool.parquet",
        log:
            f"{LOGS}/power/setup.log",
        conda:
            SOFTWARE_ENV
        params:
            **config_params("power"),
        script:
            "../scripts/power.py"

    rule power_batch:
        """One batch of simulated definitive trials at one sample size (step of the power curve)."""
        input:
            params=f"{PROC}/power/setup.json",
            pool=f"{PROC}/power/pool.parquet",
        output:
            batch=f"{PROC}/power/step{{step}}/batch{{batch}}.csv",
        log:
            f"{LOGS}/power/step{{step}}_batch{{batch}}.log",
        wildcard_constraints:
            step=r"\d+",
            batch=r"\d+",
        conda:
            SOFTWARE_ENV
        resources:
            mem_mb=1000,
            runtime=60,
        params:
            **config_params("power"),
        script:
            "../scripts/power.py"

    rule power_gather:
        """Power with Wilson CIs at each sample size, beside the analytic power; the power curve."""
        input:
            params=f"{PROC}/power/setup.json",
            batches=expand(f"{PROC}/power/step{{step}}/batch{{batch}}.csv", step=POWER_STEPS, batch=POWER_BATCHES),
        output:
            table=report(POWER_TABLE, caption="../report/power_simulation.rst", category="Planning"),
            figure=report(POWER_FIGURE, caption="../report/power_curve.rst", category="Planning"),
        log:
            f"{LOGS}/power/gather.log",
        conda:
            SOFTWARE_ENV
        params:
            **config_params("power"),
        script:
            "../scripts/power.py"
