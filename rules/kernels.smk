# Infinite-width kernels as their own cacheable targets: one Gram file per
# (dataset, kernel spec, depth), shared by every study and every N (training sets
# are nested prefixes, so regressions slice the largest Gram).


rule gram:
    input:
        data=dataset_file,
    output:
        f"{RESULTS}/kernels/{{dataset}}/{{kernel}}/L{{depth}}/gram.h5",
    log:
        f"{RESULTS}/logs/kernels/{{dataset}}/{{kernel}}/L{{depth}}/gram.log",
    benchmark:
        f"{RESULTS}/benchmarks/gram/kernels/{{dataset}}/{{kernel}}/L{{depth}}/gram.tsv",
    params:
        spec=lambda wc: KERNELS[wc.kernel],
        block_size=KERNEL_REGRESSION["block_size"],
    threads: THREADS["gram"]
    group:
        "kernels"
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/gram.py"


rule kernel_regression:
    input:
        data=dataset_file,
        gram=f"{RESULTS}/kernels/{{dataset}}/{{kernel}}/L{{depth}}/gram.h5",
    output:
        f"{RESULTS}/kernels/{{dataset}}/{{kernel}}/L{{depth}}/regression_N{{n_train}}.h5",
    log:
        f"{RESULTS}/logs/kernels/{{dataset}}/{{kernel}}/L{{depth}}/regression_N{{n_train}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/kernel_regression/kernels/{{dataset}}/{{kernel}}/L{{depth}}/regression_N{{n_train}}.tsv",
    params:
        jitter=KERNEL_REGRESSION["jitter"],
        block_size=KERNEL_REGRESSION["block_size"],
    threads: THREADS["gram"]
    group:
        "kernels"
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/kernel_regression.py"


# Trainability summary of a training Gram (Xiao et al.): eigenvalues, lambda_max/min,
# bulk, condition number and eta_theory = 2/lambda_max, for the first n_train rows.
rule kernel_spectrum:
    input:
        gram=f"{RESULTS}/kernels/{{dataset}}/{{kernel}}/L{{depth}}/gram.h5",
    output:
        f"{RESULTS}/kernels/{{dataset}}/{{kernel}}/L{{depth}}/spectrum_N{{n_train}}.h5",
    log:
        f"{RESULTS}/logs/kernels/{{dataset}}/{{kernel}}/L{{depth}}/spectrum_N{{n_train}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/kernel_spectrum/kernels/{{dataset}}/{{kernel}}/L{{depth}}/spectrum_N{{n_train}}.tsv",
    threads: THREADS["gram"]
    group:
        "kernels"
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/kernel_spectrum.py"
