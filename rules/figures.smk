# One rule per figure a study names (rule `<kind>_<figure>`, e.g. mori_ueda_fig2), each
# drawing from the study cube only, with the plot function the figure block names from the
# study plug-in's PLOTS. The plug-in's figure modules and the shared plotting module are
# inputs, so editing figure code reruns the figures and nothing upstream.
#
# A study may name no figure (`figures` left out). A figure whose rule name another rule
# already has (a Lee figure `table41` or `cube`: rule lee_table41, lee_cube) is refused here,
# at load, naming the key: Snakemake would otherwise fail with a CreateRuleException.
_FIGURES = {name: STUDIES[name].get("figures") or {} for name in STUDIES}
# Every study rule is defined by now (the Snakefile includes this file after the rules of
# each kind): check the rules-file contract (rules/common.smk) before any figure rule.
check_study_constraints(workflow.rules)
check_job_resources()
try:
    dls.check_figure_rule_names(
        STUDIES, _FIGURES, {rule.name for rule in workflow.rules}
    )
except dlc.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

for _kind in sorted({s["kind"] for s in STUDIES.values()}):
    _figure_code = [PLOTTING_CODE, *dls.plugin(_kind).FIGURE_CODE]
    for _fig in sorted({f for s in studies_of_kind(_kind) for f in _FIGURES[s]}):

        rule:
            name:
                f"{_kind}_{_fig}"
            input:
                cube=f"{RESULTS}/{{study}}/cube.nc",
                code=_figure_code,
            output:
                pdf=f"{RESULTS}/{{study}}/figures/{_fig}.pdf",
                png=report(
                    f"{RESULTS}/{{study}}/figures/{_fig}.png",
                    caption=figure_caption(_kind, _fig),
                    category="{study}",
                ),
            log:
                f"{RESULTS}/logs/{{study}}/figures/{_fig}.log",
            benchmark:
                f"{RESULTS}/benchmarks/{_kind}_{_fig}/{{study}}.tsv",
            wildcard_constraints:
                study=alternatives(
                    s for s in studies_of_kind(_kind) if _fig in _FIGURES[s]
                ),
            params:
                kind=_kind,
                # this figure's block only: a title edit reruns this figure and nothing else
                figure=lambda wc, fig=_fig: _FIGURES[wc.study][fig],
            group:
                "summaries"
            resources:
                runtime=10,
                mem_mb=2000,
            conda:
                "../envs/depthlab.yaml"
            script:
                "../workflow/scripts/plot_figure.py"
