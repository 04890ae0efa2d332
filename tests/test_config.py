import pytest
import yaml

from analysis.config import ConfigError, load_config, load_schema, validate_config


def _walk(schema, path=""):
    """Yield (path, subschema, required) for every property in the schema, including the
    properties of the values of maps (``additionalProperties``, shown as ``<name>``)."""
    required = set(schema.get("required", []))
    for key, sub in schema.get("properties", {}).items():
        p = f"{path}.{key}" if path else key
        yield p, sub, key in required
        yield from _walk(sub, p)
        if isinstance(sub.get("items"), dict):
            yield from _walk(sub["items"], p + "[]")
        if isinstance(sub.get("additionalProperties"), dict):
            yield from _walk(sub["additionalProperties"], p + ".<name>")


def test_every_key_has_description_and_default():
    schema = load_schema()
    paths = []
    for path, sub, required in _walk(schema):
        paths.append(path)
        assert sub.get("description"), f"{path} has no description"
        if "[]" not in path and not required:  # required keys and array-item fields have no default
            assert "default" in sub, f"{path} has no default"
    # the walk reaches the entries of maps such as prescored and covariates
    assert "prescored.<name>.direction" in paths and "covariates.<name>.levels" in paths


def test_minimal_config_gets_defaults():
    cfg = validate_config({"trial_id": "t1"}, check_plan=False)
    assert cfg["feasibility"]["ci_method"] == "wilson"
    assert cfg["feasibility"]["confidence_level"] == 0.95
    assert cfg["design"]["type"] == "cluster"
    assert [w["timepoint"] for w in cfg["data"]["waves"]] == ["baseline", "m3", "m9"]
    assert cfg["primary"]["outcome"] == "wemwbs_total"


def test_demo_config_is_valid(root):
    cfg = load_config(root / "config" / "config.yaml")
    assert cfg["trial_id"] == "demo"
    assert set(cfg["instruments"]) >= {"wemwbs", "eq5d5l"}


@pytest.mark.parametrize("bad, key", [
    ({"feasibility": {"ci_method": "exact"}}, "feasibility.ci_method"),
    ({"feasibility": {"confidence_level": 1.5}}, "feasibility.confidence_level"),
    ({"design": {"clustred": True}}, "design"),
    ({"data": {"waves": [{"timepoint": "baseline", "month": 0, "file": "a.csv"},
                         {"timepoint": "m3", "month": "three", "file": "b.csv"}]}}, "data.waves[1].month"),
    ({"instruments": {"wembws": {}}}, "instruments.wembws"),
    ({"trial_id": "my trial"}, "trial_id"),
])
def test_invalid_config_names_the_key(bad, key):
    with pytest.raises(ConfigError) as err:
        validate_config({"trial_id": "t1", **bad})
    assert f"config key {key}:" in str(err.value)


def test_unknown_key_is_called_unknown():
    with pytest.raises(ConfigError, match="unknown key"):
        validate_config({"trial_id": "t1", "primry": {}})


def test_wave_months_must_increase():
    waves = [{"timepoint": "baseline", "month": 0, "file": "a"}, {"timepoint": "m3", "month": 0, "file": "b"}]
    with pytest.raises(ConfigError, match="data.waves"):
        validate_config({"trial_id": "t", "data": {"waves": waves}})


def test_primary_timepoint_must_be_a_followup():
    with pytest.raises(ConfigError, match="primary.timepoint"):
        validate_config({"trial_id": "t", "primary": {"timepoint": "baseline"}})


def test_non_mapping_file_rejected(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(["a", "b"]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_docs_config_is_current(root):
    from analysis.config import schema_markdown
    assert (root / "docs/config.md").read_text() == schema_markdown(), \
        "docs/config.md is stale: run `python -m analysis.config > docs/config.md`"


_SCHEMA_WORDS = {"type", "description", "default", "properties", "items", "enum", "minimum", "maximum",
                 "exclusiveMinimum", "exclusiveMaximum", "required", "additionalProperties", "oneOf", "anyOf",
                 "allOf", "pattern", "minItems", "maxItems", "uniqueItems", "$ref", "const", "not", "if", "then",
                 "else", "format", "minLength", "maxLength", "title", "examples", "patternProperties",
                 "propertyNames", "minProperties", "definitions", "$defs", "$schema", "$id", "multipleOf"}


def _stray_schema_keys(node, path=""):
    """Keys of a schema node that are not JSON-schema words (outside property-name maps)."""
    out = []
    if isinstance(node, dict):
        names = path.rsplit("/", 1)[-1] in ("properties", "patternProperties", "definitions", "$defs")
        for k, v in node.items():
            if not names and k not in _SCHEMA_WORDS:
                out.append(f"{path}/{k}")
            if names or k not in ("default", "examples", "const", "enum"):  # values, not schemas
                out += _stray_schema_keys(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _stray_schema_keys(v, f"{path}[{i}]")
    return out


def test_schema_has_no_stray_keys(root):
    """An unquoted description with a comma in a YAML flow mapping ({description: a, b}) splits
    into stray keys and truncates the description in docs/config.md: none may exist."""
    schema = yaml.safe_load((root / "analysis/config.schema.yaml").read_text())
    assert _stray_schema_keys(schema) == []
    assert _stray_schema_keys({"properties": {"unit": yaml.safe_load("{description: a (b, c).}")}}) \
        == ["/properties/unit/c)."]


def test_plan_mistakes_are_found_from_the_config_alone(root):
    """Issue 13 item 6: mistakes a config reveals stop the run before anything is read or
    written, every one listed with its key."""
    cfg = yaml.safe_load((root / "config/config.yaml").read_text())
    cfg["outcomes"]["secondary"] = ["ucla3_totl"]
    cfg["outcomes"]["effect_modifiers"].append({"variable": "agee"})
    cfg["feasibility"]["progression_criteria"].append({"indicator": "retension", "timepoint": "m9",
                                                      "green": 0.8, "red": 0.6})
    cfg["feasibility"]["progression_criteria"].append({"indicator": "retention", "timepoint": "m12",
                                                      "green": 0.8, "red": 0.6})
    cfg["primary"]["covariates"] = ["client_grup"]
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    for key in ("outcomes.secondary: 'ucla3_totl'", "outcomes.effect_modifiers[2].variable: 'agee'",
                "feasibility.progression_criteria[7].indicator: 'retension'",
                "feasibility.progression_criteria[8].timepoint: 'm12'",
                "primary.covariates: 'client_grup'"):
        assert f"config key {key}" in msg, (key, msg)
