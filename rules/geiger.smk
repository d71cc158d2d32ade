# Geiger, Spigler, Jacot & Wyart, "Disentangling feature and lazy training in deep neural
# networks": one job per trained net (activation, depth, width, alpha, seed), one per
# frozen-initial-NTK prediction (it does not depend on alpha, so a whole alpha sweep of a
# seed shares it), one cube, one rule per figure and Table 1.

GEIGER_FIGURES = sorted({fig for s in GEIGER_STUDIES for fig in STUDIES[s]["figures"]})


rule geiger_lazy:
    input:
        data=geiger_dataset_file,
    output:
        f"{R}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    log:
        f"{R}/logs/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        run=geiger_common_params,
    threads: config.get("threads", {}).get("train", 1)
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/geiger_lazy.py"


rule geiger_train:
    input:
        data=geiger_dataset_file,
        lazy=f"{R}/{{study}}/lazy/{{activation}}_L{{depth}}_h{{width}}/seed{{seed}}.h5",
    output:
        f"{R}/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.h5",
    log:
        f"{R}/logs/{{study}}/runs/{{activation}}_L{{depth}}_h{{width}}/alpha{{alpha}}_seed{{seed}}.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        run=geiger_common_params,
    threads: config.get("threads", {}).get("train", 1)
    resources:
        runtime=240,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/geiger_train.py"


rule geiger_cube:
    input:
        data=geiger_dataset_file,
        runs=lambda wc: geiger_run_files(wc.study),
        lazy=lambda wc: geiger_lazy_files(wc.study),
    output:
        f"{R}/{{study}}/cube.nc",
    log:
        f"{R}/logs/{{study}}/cube.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        study=lambda wc: STUDIES[wc.study],
        dataset=lambda wc: DATASETS[STUDIES[wc.study]["dataset"]],
    resources:
        runtime=30,
        mem_mb=8000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/geiger_cube.py"


for _fig in GEIGER_FIGURES:

    rule:
        name:
            f"geiger_{_fig}"
        input:
            cube=f"{R}/{{study}}/cube.nc",
            code=GEIGER_PLOTTING_CODE,
        output:
            pdf=f"{R}/{{study}}/figures/{_fig}.pdf",
            png=report(
                f"{R}/{{study}}/figures/{_fig}.png",
                caption=figure_caption("geiger", _fig),
                category="{study}",
            ),
        log:
            f"{R}/logs/{{study}}/figures/{_fig}.log",
        wildcard_constraints:
            study=_alternatives(s for s in GEIGER_STUDIES if _fig in STUDIES[s]["figures"]),
        params:
            figure=lambda wc, fig=_fig: STUDIES[wc.study]["figures"][fig],
        resources:
            runtime=10,
            mem_mb=2000,
        conda:
            "../envs/depthlab.yaml"
        script:
            "../workflow/scripts/plot_figure.py"


# Table 1: power-law exponents of the kernel and weight changes in the feature regime,
# next to the paper's values and the predictions 2 / (1 + 1/L) and 1 / (1 + L).
rule geiger_table1:
    input:
        cube=f"{R}/{{study}}/cube.nc",
    output:
        f"{R}/{{study}}/table1.csv",
    log:
        f"{R}/logs/{{study}}/table1.log",
    wildcard_constraints:
        study=_alternatives(GEIGER_STUDIES),
    params:
        spec=lambda wc: STUDIES[wc.study]["table1"],
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/geiger_table.py"
