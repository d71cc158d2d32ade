rule cube:
    input:
        runs=lambda wc: run_files(wc.study),
        regressions=lambda wc: regression_files(wc.study),
        label_stability=lambda wc: label_stability_files(wc.study),
    output:
        f"{R}/{{study}}/cube.nc",
    log:
        f"{R}/logs/{{study}}/cube.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        study=lambda wc: STUDIES[wc.study],
        datasets=lambda wc: {
            name: DATASETS[name]
            for name in sorted({ds for g in STUDIES[wc.study]["grids"] for ds in g["datasets"]})
        },
        kernels=KERNELS,
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/build_cube.py"
