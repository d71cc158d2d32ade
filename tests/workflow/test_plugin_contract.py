"""The study plug-in contract: a new study kind is only plug-in files, no shared edits.

A throwaway kind `toy` is written into a private copy of the workflow (its package, rules,
schema, script and caption, exactly the files src/depthlab/studies/__init__.py lists) and
run by the real Snakemake; every shared file of the copy stays byte-identical.
"""

import filecmp
import textwrap

import xarray as xr
import yaml
from conftest import REPO, copy_workflow, run_snakemake

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
            return [f"{results}/{name}/cube.nc", f"{results}/{name}/claims.csv",
                    *(f"{results}/{name}/figures/{f}.png" for f in study["figures"])]


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
                study=_alternatives(studies_of_kind("toy")),
            script:
                "../../workflow/scripts/toy/cube.py"
    ''',
    "workflow/scripts/toy/cube.py": '''
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
        import xarray as xr  # noqa: E402
        from _common import setup_logging  # noqa: E402

        from depthlab.cube import write_cube  # noqa: E402
        from depthlab.data import read_dataset  # noqa: E402

        setup_logging(snakemake.log[0])
        data = read_dataset(snakemake.input.data)
        write_cube(xr.Dataset({"mean_label": float(data["y_train"].mean())}), snakemake.output[0])
    ''',
    "workflow/schemas/studies/toy.schema.yaml": '''
        $schema: "https://json-schema.org/draft/2020-12/schema"
        type: object
        additionalProperties: false
        required: [kind, dataset, figures]
        properties:
          kind: {const: toy}
          claims: {type: object, default: {}}
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


def _config(tmp_path, kind="toy"):
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["studies"] = {"toy": {"kind": kind, "dataset": "local1",
                              "figures": {"mean": {"plot": "mean_label"}}}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_new_study_kind_needs_only_plugin_files(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    pristine = copy_workflow(tmp_path / "pristine")
    _write_toy(wf)
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake("--cores", "1", "--configfile", str(_config(tmp_path)), cwd=work, workflow=wf)
    cube = xr.open_dataset(work / "results" / "toy" / "cube.nc", engine="h5netcdf").load()
    assert 0.0 <= float(cube["mean_label"]) <= 1.0
    assert (work / "results" / "toy" / "figures" / "mean.png").stat().st_size > 1000
    # its claims reach the scorecard of every study through the generic rules
    scorecard = (work / "results" / "claims.csv").read_text()
    assert "labels_balanced" in scorecard and "holds" in scorecard
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
