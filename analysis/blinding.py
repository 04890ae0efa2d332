"""Blinded reporting: arms relabelled A and B by a secret coin flip.

With ``blinded: true`` in the trial config the statistician (and every reader of the outputs)
sees two arms called A and B.  Which of them is the intervention is decided by a coin flip
that nobody reading the outputs can reproduce:

    flip = lowest bit of HMAC-SHA256(pseudonymisation key, "<trial_id>:blinding")
    intervention -> "B" if flip else "A";  control -> the other letter

The key is the pseudonymisation key (secret, outside the repository, see
:mod:`analysis.pseudonym`), so the allocation stays hidden until whoever holds the key
unblinds it with :func:`unblinding_table` (``python -m analysis.blinding --config ...``).

The relabelling happens once, at ingest, on every typed table with an ``arm`` column; from then
on the analysis configuration (:func:`blinded_config`) names ``B`` as the "intervention" arm
and ``A`` as the "control" arm, so every estimate is B minus A.  Outputs that would reveal the
allocation are withheld: intervention receipt, adherence and fidelity (only the intervention
arm attends sessions or is assessed for fidelity), effect modification by fidelity, and the
economic evaluation (only the intervention arm carries intervention costs).  Attendance
(``sessions_attended``) is blanked and the fidelity table emptied before anything is written.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac

import pandas as pd

LABEL_A, LABEL_B = "A", "B"
ARM_LABELS = {LABEL_A: "Arm A", LABEL_B: "Arm B"}
# Progression indicators that exist only for the intervention arm, hence reveal it.
REVEALING_INDICATORS = ("intervention_receipt", "adherence", "fidelity")


def coin_flip(key: bytes, trial_id: str) -> bool:
    """True when the intervention arm is labelled B (deterministic given the key)."""
    digest = hmac.new(key, f"{trial_id}:blinding".encode("utf-8"), hashlib.sha256).digest()
    return bool(digest[-1] & 1)


def arm_mapping(cfg: dict, key: bytes) -> dict[str, str]:
    """Raw arm code -> blinded label (A or B)."""
    d = cfg["design"]
    b_is_intervention = coin_flip(key, cfg["trial_id"])
    return {d["intervention_arm"]: LABEL_B if b_is_intervention else LABEL_A,
            d["control_arm"]: LABEL_A if b_is_intervention else LABEL_B}


def blind_tables(tables: dict[str, pd.DataFrame], cfg: dict, key: bytes) -> dict[str, pd.DataFrame]:
    """Relabel every ``arm`` column A/B and drop what would reveal the allocation.

    Arm values other than the two configured codes (e.g. ``all`` in the exclusion counts) are
    kept.  Returns new frames; the inputs are not modified."""
    mapping = arm_mapping(cfg, key)
    out = {}
    for name, t in tables.items():
        if isinstance(t, pd.DataFrame) and "arm" in t.columns:
            t = t.copy()
            t["arm"] = t["arm"].replace(mapping)
        out[name] = t
    if "participants" in out and "sessions_attended" in out["participants"]:
        out["participants"] = out["participants"].assign(
            sessions_attended=pd.Series(pd.NA, index=out["participants"].index, dtype="Float64"))
    if "fidelity" in out:
        out["fidelity"] = out["fidelity"].iloc[0:0]
    return out


def blinded_config(cfg: dict) -> dict:
    """The analysis configuration every stage after ingest uses when ``blinded`` is true:
    arms A (as 'control') and B (as 'intervention'), allocation-revealing analyses off.
    Returns ``cfg`` unchanged when not blinded."""
    if not cfg.get("blinded"):
        return cfg
    c = copy.deepcopy(cfg)
    c["design"].update(control_arm=LABEL_A, intervention_arm=LABEL_B, arm_labels=dict(ARM_LABELS))
    c["data"]["fidelity"] = None
    f = c["feasibility"]
    f["fidelity_threshold"] = None
    f["adherence_min_sessions"] = None
    f["progression_criteria"] = [k for k in f.get("progression_criteria") or []
                                 if k.get("indicator") not in REVEALING_INDICATORS]
    o = c.get("outcomes") or {}
    o["effect_modifiers"] = [m for m in o.get("effect_modifiers") or [] if m.get("source") != "fidelity"]
    c["economics"]["enabled"] = False
    return c


UNBLINDED_TERM = "intervention vs control"  # the term of effects.csv (analysis.outcomes.TERM)


def treatment_term(cfg: dict) -> str:
    """The ``term`` of the between-arm estimate in effects.csv."""
    return f"{LABEL_B} vs {LABEL_A}" if cfg.get("blinded") else UNBLINDED_TERM


def relabel_results(table: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Result table with the arm roles renamed for blinded output: terms read 'B vs A' and an
    ``arm_shifted`` role 'intervention'/'control' becomes 'B'/'A'.  Unchanged when not blinded."""
    if not cfg.get("blinded"):
        return table
    t = table.copy()
    if "term" in t:
        t["term"] = t["term"].astype(str).str.replace(UNBLINDED_TERM, treatment_term(cfg), regex=False)
    if "arm_shifted" in t:
        t["arm_shifted"] = t["arm_shifted"].replace({"intervention": LABEL_B, "control": LABEL_A})
    return t


def withheld(cfg: dict) -> list[str]:
    """Human-readable list of what blinded mode withholds (for the report)."""
    if not cfg.get("blinded"):
        return []
    return ["intervention receipt, adherence and fidelity (they exist only for the intervention arm)",
            "effect modification by site fidelity",
            "the economic evaluation (only the intervention arm carries intervention costs)"]


def unblinding_table(cfg: dict, key: bytes) -> pd.DataFrame:
    """Which raw arm code each blinded label stands for: for the key holder, after lock."""
    m = arm_mapping(cfg, key)
    return pd.DataFrame({"label": list(m.values()), "arm": list(m.keys())}).sort_values("label")


def main(argv: list[str] | None = None) -> int:
    from analysis.config import load_config
    from analysis.pseudonym import load_key
    ap = argparse.ArgumentParser(description="Unblind: print which raw arm code is A and which is B.")
    ap.add_argument("--config", required=True)
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    key = load_key((cfg.get("pseudonymisation") or {}).get("key_file"), create=False)
    print(unblinding_table(cfg, key).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
