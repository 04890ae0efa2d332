"""The bad-input corpus (tests/bad_inputs/cases.yaml) run through the ingest stage.

Each error case must stop the run with a message naming the file, the line/row, the column and
the rule, leave no output behind and leave the raw files untouched; each ``ok`` case must
ingest and write its outputs.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from analysis.config import load_config
from analysis.ingest import DataValidationError
from analysis.io import sha256_file
from analysis.readers import ROW_WORD, detect_format
from analysis.stages import ingest as ingest_stage

ROOT = Path(__file__).resolve().parent.parent
CASES = yaml.safe_load((ROOT / "tests/bad_inputs/cases.yaml").read_text(encoding="utf-8"))["cases"]
BASES = {"demo": ("data/raw/demo", "config/config.yaml"),
         "demo_redcap": ("data/raw/demo_redcap", "config/demo_redcap.yaml"),
         "individual": ("data/raw/individual", "config/individual.yaml"),
         "single_arm": ("data/raw/single_arm", "config/single_arm.yaml"),
         "btheb": ("data/raw/btheb", "config/examples/btheb.yaml")}
KEY = b"corpus-test-key-0123456789abcdef"
OUTPUTS = list(ingest_stage.TABLES)


def _set_csv_cell(path: Path, line: int, column: str, value: str) -> None:
    raw = path.read_bytes().decode("utf-8")
    lines = raw.split("\n")
    header = lines[0].rstrip("\r").split(",")
    cr = "\r" if lines[line - 1].endswith("\r") else ""
    fields = lines[line - 1].rstrip("\r").split(",")
    fields[header.index(column)] = value
    lines[line - 1] = ",".join(fields) + cr
    path.write_bytes("\n".join(lines).encode("utf-8"))


def apply_edit(raw: Path, edit: dict) -> None:
    (op, a), = edit.items()
    path = raw / a["file"]
    if op == "replace":
        enc = a.get("encoding", "utf-8")
        text = path.read_bytes().decode("utf-8" if enc == "utf-8" else "cp1252")
        assert a["old"] in text, f"{a['old']!r} not in {a['file']}"
        text = text.replace(a["old"], a["new"], a.get("count", 1) or -1)
        path.write_bytes(text.encode(enc))
    elif op == "set":
        _set_csv_cell(path, a["line"], a["column"], str(a["value"]))
    elif op == "write":
        path.write_text(a["text"], encoding="utf-8")
    elif op == "add_column":
        lines = path.read_text(encoding="utf-8").split("\n")
        lines = [ln + ("," + a["column"] if i == 0 else "," + str(a["value"])) if ln else ln
                 for i, ln in enumerate(lines)]
        path.write_text("\n".join(lines), encoding="utf-8")
    elif op == "prepend_bytes":
        path.write_bytes(bytes.fromhex(a["hex"]) + path.read_bytes())
    elif op == "delete":
        path.unlink()
    elif op == "reencode":
        path.write_bytes(path.read_bytes().decode("utf-8").encode(a["encoding"]))
    elif op == "copy":
        shutil.copyfile(ROOT / a["src"], path)
    elif op == "xlsx_set":
        import openpyxl
        wb = openpyxl.load_workbook(path)
        wb.active[a["cell"]] = a["value"]
        wb.save(path)
    elif op == "sav_set":
        import pyreadstat
        df, meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
        df.loc[a["case"] - 1, a["column"]] = a["value"]
        pyreadstat.write_sav(df, str(path), variable_value_labels=meta.variable_value_labels)
    else:  # pragma: no cover
        raise ValueError(f"unknown edit {op}")


def _config(base_cfg: Path, raw: Path, overrides: dict) -> dict:
    cfg = copy.deepcopy(load_config(ROOT / base_cfg))
    cfg["data"]["raw_dir"] = str(raw)
    for key, value in (overrides or {}).items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def test_corpus_has_at_least_25_error_cases():
    errors = [c for c in CASES if not c.get("ok")]
    assert len(errors) >= 25 and len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path):
    raw_src, cfg_file = BASES[case.get("base", "demo")]
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / raw_src, raw)
    for edit in case.get("edits", []):
        apply_edit(raw, edit)
    cfg = _config(cfg_file, raw, case.get("config"))
    before = {p.name: sha256_file(p) for p in raw.iterdir()}
    out_dir = tmp_path / "out"
    outputs = {t: str(out_dir / f"{t}.parquet") for t in OUTPUTS + ["pseudonyms"]}
    outputs.update(queries=str(out_dir / "ingest_queries.csv"), exclusions=str(out_dir / "exclusions.csv"),
                   manifest=str(out_dir / "raw_manifest.csv"))
    exp = case.get("expect")
    if case.get("ok"):
        ingest_stage.run(cfg, {}, outputs, raw_dir=str(raw), key=KEY)
        assert all(Path(p).exists() for p in outputs.values())
        if exp:
            import pandas as pd
            q = pd.read_csv(outputs["queries"], dtype=str, keep_default_na=False)
            hit = q[(q.file == exp["file"]) & (q.column == exp["column"]) & q.rule.str.contains(exp["rule"], regex=False)]
            assert len(hit) == 1, q
            row = hit.iloc[0]
            assert row.line == str(exp["line"]) and row.severity == exp.get("severity", "error")
            if "value" in exp:
                assert row.value == exp["value"]
    else:
        with pytest.raises(DataValidationError) as err:
            ingest_stage.run(cfg, {}, outputs, raw_dir=str(raw), key=KEY)
        qs = [q for q in err.value.queries if q.file == exp["file"] and q.line == exp["line"]
              and q.column == exp["column"] and exp["rule"] in q.rule]
        assert qs, f"expected query not raised; got:\n{err.value}"
        q = qs[0]
        assert q.severity == "error"
        if "value" in exp:
            assert q.value == str(exp["value"])
        msg = str(err.value)
        word = ROW_WORD.get(detect_format(exp["file"]) or "csv", "line")
        where = f"{exp['file']}, {word} {exp['line']}" if exp["line"] else f"{exp['file']}"
        assert where in msg and exp["rule"] in msg and "nothing was written" in msg
        if exp["column"]:
            assert f"column '{exp['column']}'" in msg
        assert not out_dir.exists() or not any(out_dir.iterdir()), "outputs were written despite errors"
    after = {p.name: sha256_file(p) for p in raw.iterdir()}
    assert before == after, "ingest modified a raw file"
