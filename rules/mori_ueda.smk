# Figures of Mori & Ueda, "Is deeper better? It depends on locality of relevant features".
# Each figure reads only the study cube. The plotting module is an input so that
# editing figure code reruns the figures and nothing upstream.


rule mori_ueda_fig2:
    input:
        cube=f"{R}/{{study}}/cube.nc",
        code=PLOTTING_CODE,
    output:
        pdf=f"{R}/{{study}}/figures/fig2.pdf",
        png=report(
            f"{R}/{{study}}/figures/fig2.png",
            caption="../report/mori_ueda_fig2.rst",
            category="{study}",
        ),
    log:
        f"{R}/logs/{{study}}/figures/fig2.log",
    wildcard_constraints:
        study=_alternatives(studies_of_kind("mori_ueda")),
    params:
        figure=lambda wc: STUDIES[wc.study]["figures"]["fig2"],
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/figure_test_error_vs_n.py"
