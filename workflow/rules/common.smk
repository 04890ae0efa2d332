# Validate the trial config (fills every default; a bad key fails here, naming the key) and
# define the output layout shared by all rules.
import os
import time

from analysis.blinding import blinded_config
from analysis.config import check_input_files, read_config_file, validate_config
from analysis.pseudonym import config_key_fingerprint
from analysis.stages.config_keys import as_params, stage_config

# Every config file Snakemake read is re-read as untrusted YAML: one using YAML tags or YTE
# templating is refused here even in an environment without the Pathways config guard (which
# refuses it before Snakemake evaluates it: analysis/snakemake_guard.py).
for _configfile in workflow.configfiles:
    read_config_file(_configfile)
config = validate_config(config)
# A misspelt, moved or deleted raw file stops the run here, before any job is planned, so
# outputs made from earlier inputs are never kept or reused as if they were current.
check_input_files(config)
# The registered analysis plan: a SAP lock next to the config file is compared with the config key
# by key; an undeclared difference stops the run here, before anything is written, listing every
# changed key (exploratory: true runs anyway, labelled "not the registered analysis").  sap.smk.
from analysis.sap import NOT_REGISTERED, check_run

SAP_STATUS = check_run(config, workflow.configfiles)
# An exploratory run labels every table and figure it writes (sap.smk): the label is a parameter
# of every rule that writes reports/, so switching between registered and exploratory runs
# rewrites them all, whatever config keys each rule reads.
OUTPUT_LABEL = NOT_REGISTERED if SAP_STATUS and SAP_STATUS["status"] == NOT_REGISTERED else ""
# Ingest validates the raw files against the trial's own arm codes; every later stage sees the
# analysis configuration, which under `blinded: true` has arms A/B and no allocation-revealing
# analyses (analysis/blinding.py).
INGEST_CONFIG = config
config = blinded_config(config)
RUN_STARTED = time.time()  # outputs modified from now on are this run's (see onerror in the Snakefile)
TRIAL = config["trial_id"]
RAW = config["data"]["raw_dir"]
PROC = f"data/processed/{TRIAL}"
REP = f"reports/{TRIAL}"
TABLES = f"{REP}/tables"
FIGS = f"{REP}/figures"
LOGS = f"logs/{TRIAL}"
REPORT = f"{REP}/report.html"
MANIFEST = f"{REP}/manifest.json"


def key_fingerprint_param(wildcards):
    """Fingerprint of the pseudonymisation key (never the key): a parameter of ingest and link,
    so a changed key reruns ingest (Snakemake's params rerun trigger) and link refuses processed
    data made with another key.  A dry run does not create a key."""
    return config_key_fingerprint(INGEST_CONFIG, create=not workflow.dryrun)


def config_params(stage):
    """A rule's config parameters: only the keys ``stage`` reads, in canonical order, one
    parameter per second-level key (analysis/stages/config_keys.py).  An edit reruns only the
    rules whose keys it touches, and "Params have changed" shows only the changed part; the
    same config with its keys in another order reruns nothing.  Ingest sees the trial's own arm
    codes, every later stage the (possibly blinded) analysis configuration.  Every stage after
    ingest (they write reports/) also gets the output label of an exploratory run."""
    params = as_params(stage_config(stage, INGEST_CONFIG if stage == "ingest" else config))
    if stage != "ingest":
        params["output_label"] = OUTPUT_LABEL
    return params


def raw_inputs():
    d = INGEST_CONFIG["data"]
    names = [d["participants"]] + [w["file"] for w in d["waves"]]
    names += [d[k] for k in ("sites", "screening", "service_use", "fidelity", "adverse_events") if d.get(k)]
    return [f"{RAW}/{n}" for n in dict.fromkeys(names)]


def programme_raw_inputs():
    """The raw files of a programme design (design.type programme: workflow/rules/programme.smk)."""
    d = INGEST_CONFIG["data"]
    return [f"{RAW}/{d[k]}" for k in ("monitoring", "funding", "survey") if d.get(k)]


# Named inputs of the report rule.  Each stage's rule file registers the result files its
# report section reads; report.smk (included last) passes them all to the report stage.
REPORT_INPUTS = {}

# The software environment of all the rules (environment.yml): the same packages and pins as pyproject.toml
# (tests/test_environment.py).  Snakemake uses it only when asked to (--sdm conda); the tested
# install path is `bash pathways.sh setup` (pip), which runs every rule in that one environment.
SOFTWARE_ENV = os.path.join(workflow.basedir, "environment.yml")

# The report notebook: the one source of every report (executed once per audience).
REPORT_NOTEBOOK = os.path.join(workflow.basedir, "workflow", "notebooks", "report.ipynb")
