# Trial-based cost-effectiveness analysis; runs only when economics.enabled is true.
if config["economics"]["enabled"]:

    REPORT_INPUTS.update(
        cea=f"{TABLES}/cea.csv",
        ceac=f"{TABLES}/ceac.csv",
        cea_by_arm=f"{TABLES}/cea_by_arm.csv",
        unit_costs=f"{TABLES}/unit_costs.csv",
        ce_plane=f"{FIGS}/ce_plane.png",
        ceac_figure=f"{FIGS}/ceac.png",
    )

    rule economics:
        """Costs, QALYs, incremental analysis with a (two-stage) bootstrap, CE plane and CEAC."""
        input:
            linked=f"{PROC}/analysis.parquet",
            service_use=f"{PROC}/service_use.parquet",
            participants=f"{PROC}/participants.parquet",
        output:
            cea=report(f"{TABLES}/cea.csv", caption="../report/economics_cea.rst", category="Economics"),
            ceac=f"{TABLES}/ceac.csv",
            by_arm=f"{TABLES}/cea_by_arm.csv",
            unit_costs=report(
                f"{TABLES}/unit_costs.csv", caption="../report/economics_unit_costs.rst", category="Economics"
            ),
            replicates=f"{TABLES}/cea_bootstrap.parquet",
            participants=f"{PROC}/economics.parquet",
            ce_plane=report(f"{FIGS}/ce_plane.png", caption="../report/economics_plane.rst", category="Economics"),
            ceac_figure=report(f"{FIGS}/ceac.png", caption="../report/economics_ceac.rst", category="Economics"),
        log:
            f"{LOGS}/economics.log",
        conda:
            SOFTWARE_ENV
        params:
            **config_params("economics"),
        script:
            "../scripts/economics.py"
