# Figures of Mori & Ueda, "Is deeper better? It depends on locality of relevant features".
# One rule per figure a mori_ueda study names (fig1, fig2, fig3, fig4a, ...), each
# reading only the study cube. The plotting module is an input, so editing figure code
# reruns the figures and nothing upstream.

MORI_UEDA_FIGURES = sorted({fig for s in MORI_UEDA_STUDIES for fig in STUDIES[s]["figures"]})


for _fig in MORI_UEDA_FIGURES:

    rule:
        name:
            f"mori_ueda_{_fig}"
        input:
            cube=f"{R}/{{study}}/cube.nc",
            code=PLOTTING_CODE,
        output:
            pdf=f"{R}/{{study}}/figures/{_fig}.pdf",
            png=report(
                f"{R}/{{study}}/figures/{_fig}.png",
                caption=figure_caption("mori_ueda", _fig),
                category="{study}",
            ),
        log:
            f"{R}/logs/{{study}}/figures/{_fig}.log",
        wildcard_constraints:
            study=_alternatives(s for s in MORI_UEDA_STUDIES if _fig in STUDIES[s]["figures"]),
        params:
            figure=lambda wc, fig=_fig: STUDIES[wc.study]["figures"][fig],
        resources:
            runtime=10,
            mem_mb=2000,
        conda:
            "../envs/depthlab.yaml"
        script:
            "../workflow/scripts/plot_figure.py"


# Per figure and label: sign and size of the depth effect and the NTK gap (CSV, and
# printed), so a reader sees at a glance whether the paper's claims hold in this run.
rule mori_ueda_summary:
    input:
        cube=f"{R}/{{study}}/cube.nc",
    output:
        f"{R}/{{study}}/summary.csv",
    log:
        f"{R}/logs/{{study}}/summary.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        figures=lambda wc: STUDIES[wc.study]["figures"],
        depths=lambda wc: {"shallow": 1, "deep": 7, **STUDIES[wc.study].get("summary", {})},
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/summary_table.py"
