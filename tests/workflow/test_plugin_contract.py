"""The study plug-in contract: a new study kind is only plug-in files, no shared edits.

A throwaway kind `toy` is written into a private copy of the workflow (its package, rules,
schema, script and caption, exactly the files src/depthlab/studies/__init__.py lists) and
run by the real Snakemake; every shared file of the copy stays byte-identical. Breaking the
contract (a plug-in attribute missing, a rule without its study constraint, a `claims:` or
`resources:` typo) fails at load with one error naming the key or file.
"""

import copy
import filecmp
import textwrap
import types
from pathlib import Path

import pytest
import xarray as xr
import yaml
from conftest import REPO, copy_workflow, run_snakemake

from depthlab.config import ConfigError, check_config, validate_against
from depthlab.studies import KINDS, check_plugin, schema_path

TOY_FILES = {
    "src/depthlab/studies/toy/__init__.py": '''
        """A throwaway study: mean label per dataset, one figure."""
        from pathlib import Path

        from depthlab.config import ConfigError

        KIND = "toy"
        FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)


        def check(key, study, config):
            if study["dataset"] not in config["datasets"]:
                raise ConfigError(f"{key}.dataset: unknown dataset {study['dataset']!r}")


        def targets(name, study, results):
            # `figures` is optional: a study may draw none
            return [f"{results}/{name}/cube.nc", f"{results}/{name}/claims.csv",
                    *(f"{results}/{name}/figures/{f}.png" for f in study.get("figures", {}))]


        def __getattr__(attr):
            if attr == "PLOTS":
                from depthlab.studies.toy.figures import PLOTS

                return PLOTS
            if attr == "claims":
                from depthlab.studies.toy.paper_claims import claims

                return claims
            raise AttributeError(attr)
    ''',
    "src/depthlab/studies/toy/paper_claims.py": '''
        from depthlab.claims import ClaimResult, threshold_verdict


        def claims(cube, study):
            mean = float(cube["mean_label"])
            return [ClaimResult(
                claim_id="labels_balanced", kind="balance", paper="toy", where="-",
                statement="about half the training labels are 1", measured=mean,
                uncertainty=float("nan"), criterion="mean label >= 0.25",
                verdict=threshold_verdict(mean, 0.25, above=True), figure="mean")]
    ''',
    "src/depthlab/studies/toy/figures.py": '''
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt


        def plot_mean_label(cube, figure):
            fig, ax = plt.subplots()
            ax.bar([0], [float(cube["mean_label"])])
            ax.set_title(figure.get("title", "toy"))
            return fig


        PLOTS = {"mean_label": plot_mean_label}
    ''',
    "rules/studies/toy.smk": '''
        rule toy_cube:
            input:
                data=lambda wc: f"{RESULTS}/datasets/{STUDIES[wc.study]['dataset']}.h5",
            output:
                f"{RESULTS}/{{study}}/cube.nc",
            log:
                f"{RESULTS}/logs/{{study}}/cube.log",
            wildcard_constraints:
                study=study_constraint("toy"),
            threads: job_threads("toy_cube", 1)
            resources:
                **job_resources("toy_cube", runtime=10, mem_mb=1000),
            script:
                "../../src/depthlab/studies/toy/scripts/cube.py"
    ''',
    "src/depthlab/studies/toy/scripts/cube.py": '''
        import xarray as xr

        from depthlab.cube import write_cube
        from depthlab.data import read_dataset
        from depthlab.job_setup import setup_logging

        setup_logging(snakemake.log[0])
        data = read_dataset(snakemake.input.data)
        write_cube(xr.Dataset({"mean_label": float(data["y_train"].mean())}), snakemake.output[0])
    ''',
    "workflow/schemas/studies/toy.schema.yaml": '''
        $schema: "https://json-schema.org/draft/2020-12/schema"
        type: object
        additionalProperties: false
        required: [kind, dataset]
        properties:
          kind: {const: toy}
          claims: {$ref: "../claims.schema.yaml"}
          resources: {$ref: "../resources.schema.yaml"}
          dataset: {type: string}
          figures:
            type: object
            additionalProperties:
              type: object
              required: [plot]
              properties:
                plot: {enum: [mean_label]}
                title: {type: string, default: "mean training label"}
    ''',
    "report/toy/mean.rst": "The toy study's mean training label.\n",
}


def _write_toy(wf):
    for rel, text in TOY_FILES.items():
        path = wf / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def _config(tmp_path, kind="toy", keep_tiny=False, **extra):
    """The tiny config's datasets with a toy study (and its mori_ueda study `tiny` if
    `keep_tiny`); `extra` is merged into the toy study block."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    studies = cfg["studies"] if keep_tiny else {}
    studies["toy"] = {"kind": kind, "dataset": "local1",
                      "figures": {"mean": {"plot": "mean_label"}}, **extra}
    cfg["studies"] = studies
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_a_new_study_kind_needs_only_plugin_files(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    pristine = copy_workflow(tmp_path / "pristine")
    _write_toy(wf)
    work = tmp_path / "work"
    work.mkdir()
    # a second study of the kind names no figure: `figures` is optional in a study block
    config = _config(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["studies"]["toy_bare"] = {"kind": "toy", "dataset": "local1"}
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run_snakemake("--cores", "1", "--configfile", str(config), cwd=work, workflow=wf)
    cube = xr.open_dataset(work / "results" / "toy" / "cube.nc", engine="h5netcdf").load()
    assert 0.0 <= float(cube["mean_label"]) <= 1.0
    assert (work / "results" / "toy" / "figures" / "mean.png").stat().st_size > 1000
    # its claims reach the scorecard of every study through the generic rules
    scorecard = (work / "results" / "claims.csv").read_text()
    assert "labels_balanced" in scorecard and "holds" in scorecard
    # the study without figures: its cube and claims, no figure
    assert (work / "results" / "toy_bare" / "cube.nc").is_file()
    assert "toy_bare" in scorecard
    assert not (work / "results" / "toy_bare" / "figures").exists()
    # Every file the copies share is unchanged: the toy kind added files and edited none.
    for shared in ("Snakefile", "rules/common.smk", "rules/figures.smk",
                   "src/depthlab/config.py", "src/depthlab/studies/__init__.py",
                   "workflow/schemas/config.schema.yaml", "workflow/scripts/plot_figure.py",
                   "rules/claims.smk", "src/depthlab/claims.py",
                   "profiles/slurm/config.yaml"):
        assert filecmp.cmp(wf / shared, pristine / shared, shallow=False), shared


def test_an_unknown_study_kind_is_an_error_naming_the_key(tmp_path):
    proc = run_snakemake("-n", "--configfile", str(_config(tmp_path, kind="nonesuch")),
                         cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "studies.toy.kind" in out and "nonesuch" in out, out[-2000:]


# ------------------------------------------------------------ the contract, checked at load


def _toy_workflow(tmp_path, **replace):
    """A workflow copy with the toy kind, its files overridden by ``replace`` (path -> text,
    or None to leave the file out)."""
    wf = copy_workflow(tmp_path / "wf")
    _write_toy(wf)
    for rel, text in replace.items():
        path = wf / rel
        if text is None:
            path.unlink()
        else:
            path.write_text(textwrap.dedent(text).lstrip())
    return wf


def _load_error(tmp_path, wf, config):
    """Output of a `snakemake -n` that must fail at load."""
    proc = run_snakemake("-n", "--configfile", str(config), cwd=tmp_path, workflow=wf,
                         check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    return out


def test_a_plugin_breaking_the_contract_fails_at_load_naming_every_attribute(tmp_path):
    # KIND wrong, targets not callable, FIGURE_CODE missing, PLOTS' module absent
    broken = TOY_FILES["src/depthlab/studies/toy/__init__.py"].replace(
        'KIND = "toy"', 'KIND = "toi"').replace(
        'FIGURE_CODE = (str(Path(__file__).with_name("figures.py")),)', "").replace(
        "def targets(name, study, results):",
        "targets = 'cube.nc'\n\n\n        def _targets(name, study, results):")
    wf = _toy_workflow(tmp_path, **{"src/depthlab/studies/toy/__init__.py": broken,
                                    "src/depthlab/studies/toy/figures.py": None})
    out = _load_error(tmp_path, wf, _config(tmp_path))
    lines = [ln for ln in out.splitlines() if "plug-in contract" in ln]
    assert len(lines) == 1, out[-3000:]  # one message names everything
    line = lines[0]
    assert "'toy'" in line and str(Path("src/depthlab/studies/toy/__init__.py")) in line
    assert "KIND is 'toi'" in line
    assert "targets is a str, not callable" in line
    assert "FIGURE_CODE missing" in line
    assert "PLOTS fails to load" in line and "figures" in line
    assert "check " not in line and "claims " not in line  # those keep the contract


def test_check_plugin_checks_every_attribute_and_its_type():
    def good():
        module = types.ModuleType("depthlab.studies.fake")
        module.__file__ = "/somewhere/fake/__init__.py"
        module.KIND = "fake"
        module.check = module.targets = module.claims = lambda *a: None
        module.PLOTS = {"p": lambda cube, fig: None}
        module.FIGURE_CODE = ["/somewhere/fake/figures.py"]
        return module

    check_plugin(good(), "fake")  # keeps the contract
    for attr, value, said in [("check", None, "check is a NoneType, not callable"),
                              ("PLOTS", [print], "PLOTS is a list, not a mapping"),
                              ("PLOTS", {"p": 1}, "values of ['p'] are not callable"),
                              ("FIGURE_CODE", "figures.py", "not a list or tuple"),
                              ("claims", "x", "claims is a str, not callable")]:
        module = good()
        setattr(module, attr, value)
        with pytest.raises(ConfigError, match="fake") as err:
            check_plugin(module, "fake")
        assert said in str(err.value) and "/somewhere/fake/__init__.py" in str(err.value)
    module = good()
    del module.targets, module.KIND
    with pytest.raises(ConfigError) as err:
        check_plugin(module, "fake")
    assert "KIND missing" in str(err.value) and "targets missing" in str(err.value)
    for kind in KINDS:  # every real plug-in keeps it
        import importlib

        check_plugin(importlib.import_module(f"depthlab.studies.{kind}"), kind)


UNCONSTRAINED_RULES = '''
    rule toy_cube:
        input:
            data=lambda wc: f"{RESULTS}/datasets/{STUDIES[wc.study]['dataset']}.h5",
        output:
            f"{RESULTS}/{{study}}/cube.nc",
        log:
            f"{RESULTS}/logs/{{study}}/cube.log",
        CONSTRAINT
        script:
            "../../src/depthlab/studies/toy/scripts/cube.py"
'''


@pytest.mark.parametrize("constraint,said", [
    ("", "do not restrict it"),  # forgotten: it would claim the mori_ueda study's cube
    ('wildcard_constraints:\n            study=".+",', "it matches ['tiny']"),
])
def test_a_rule_without_its_study_constraint_is_refused_at_load(tmp_path, constraint, said):
    rules = UNCONSTRAINED_RULES.replace("CONSTRAINT", constraint)
    wf = _toy_workflow(tmp_path, **{"rules/studies/toy.smk": rules})
    out = _load_error(tmp_path, wf, _config(tmp_path, keep_tiny=True))
    assert "rule toy_cube" in out and said in out, out[-3000:]
    assert 'study=study_constraint(\"toy\")' in out or 'study_constraint("toy")' in out
    assert "KeyError" not in out


def test_a_rule_not_named_after_its_kind_is_refused_at_load(tmp_path):
    rules = TOY_FILES["rules/studies/toy.smk"].replace("rule toy_cube:", "rule cube_of_toy:")
    wf = _toy_workflow(tmp_path, **{"rules/studies/toy.smk": rules})
    out = _load_error(tmp_path, wf, _config(tmp_path))
    assert "rule cube_of_toy" in out and "name it toy_cube_of_toy" in out, out[-3000:]


@pytest.mark.parametrize("resources,said", [
    ({"toy_cub": {"mem_mb": 100}}, "studies.toy.resources.toy_cub: no toy job"),
    ({"toy_cube": {"memory": 100}}, "studies.toy.resources.toy_cube"),
    ({"toy_cube": {"gpu": -1}}, "studies.toy.resources.toy_cube.gpu"),
])
def test_a_resources_typo_fails_at_load_naming_the_key(tmp_path, resources, said):
    wf = _toy_workflow(tmp_path)
    out = _load_error(tmp_path, wf, _config(tmp_path, resources=resources))
    assert said in out, out[-3000:]


def test_a_study_resources_block_sets_its_jobs_requests(tmp_path):
    wf = _toy_workflow(tmp_path)
    config = _config(tmp_path, resources={"toy_cube": {"threads": 2, "mem_mb": 1234,
                                                       "gpu": 1, "gpu_model": "a100"}})
    cfg = yaml.safe_load(config.read_text())
    cfg["studies"]["toy_bare"] = {"kind": "toy", "dataset": "local1"}
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = run_snakemake("-n", "-p", "--cores", "4", "--configfile", str(config), cwd=tmp_path,
                         workflow=wf)
    jobs = [block for block in proc.stdout.split("\n\n") if "rule toy_cube:" in block]
    (own,) = [b for b in jobs if "results/toy/cube.nc" in b]
    (bare,) = [b for b in jobs if "results/toy_bare/cube.nc" in b]
    assert "threads: 2" in own and "mem_mb=1234" in own and "gpu=1" in own, own
    assert "gpu_model=a100" in own, own
    # the other study keeps the rule's defaults (a gpu it did not ask for is 0, no model)
    assert "threads: 2" not in bare and "mem_mb=1000" in bare and "gpu=0" in bare, bare
    assert "gpu_model" not in bare, bare


def _claim_kinds(kind):
    import importlib

    return importlib.import_module(f"depthlab.studies.{kind}.paper_claims").KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_a_claims_typo_fails_at_load_for_every_kind(kind):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    name = next(n for n, s in config["studies"].items() if s["kind"] == kind)
    claim = sorted(_claim_kinds(kind))[0]
    config["studies"][name]["claims"] = {claim: {"treshold": 0.5}}
    study = copy.deepcopy(config["studies"][name])
    with pytest.raises(ConfigError) as err:
        check_config(config, missing_data="warn")
    message = str(err.value)
    assert message.startswith(f"studies.{name}.claims.{claim}") and "treshold" in message
    # the kind's schema itself refuses it: one `claims:` schema, strict for every kind
    with pytest.raises(ConfigError) as err:
        validate_against(study, schema_path(kind), f"studies.{name}")
    assert f"studies.{name}.claims.{claim}" in str(err.value) and "treshold" in str(err.value)
