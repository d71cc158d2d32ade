# The papers' claims, checked on each study's cube (depthlab.claims), and the scorecard of
# every study that the report shows first (report/workflow.rst embeds it). Generic: the
# study plug-in's `claims(cube, study)` says what a study claims.
#
# Needs from common.smk: RESULTS, STUDIES, dls, study_plugin(name), studies_of_kind(kind),
# alternatives(names), claims_inputs(study).

import os

# laptop / paper / ...: the config's `scale`, else named after the config file(s)
# (config/config.yaml is the laptop scale, config/paper.yaml the papers').
CLAIMS_SCALE = str(
    config.get("scale")
    or "+".join(
        {"config": "laptop", "paper": "paper"}.get(stem, stem)
        for stem in (os.path.splitext(os.path.basename(str(f)))[0] for f in workflow.configfiles)
    )
    or "unspecified"
)
# The modules a study's claims come from (the mechanism and the plug-in's claims.py):
# inputs of its claims rule, so editing them reruns its claims and nothing upstream.
CLAIMS_CODE = {
    name: [
        path
        for path in (
            os.path.join(workflow.basedir, "src", "depthlab", "claims.py"),
            os.path.join(os.path.dirname(study_plugin(name).__file__), "paper_claims.py"),
        )
        if os.path.exists(path)
    ]
    for name in STUDIES
}


rule claims:
    input:
        cube=f"{RESULTS}/{{study}}/cube.nc",
        code=lambda wc: CLAIMS_CODE[wc.study],
    output:
        report(
            f"{RESULTS}/{{study}}/claims.csv",
            caption="../report/claims.rst",
            category="{study}",
        ),
    log:
        f"{RESULTS}/logs/{{study}}/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims/{{study}}/claims.tsv",
    params:
        study=lambda wc: claims_inputs(STUDIES[wc.study]),
        scale=CLAIMS_SCALE,
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/claims.py"


# Claims over several studies of one kind (a plug-in's optional claims_across, e.g. Nichani's
# critical depth against the number of classes, Mori-Ueda's cross-entropy against
# mean-square loss): one job per kind with two or more studies in the config.
ACROSS_KINDS = sorted(
    kind
    for kind in {study["kind"] for study in STUDIES.values()}
    if getattr(dls.plugin(kind), "CLAIMS_ACROSS", False) and len(studies_of_kind(kind)) > 1
)
# the scorecard's "study" of such rows: the studies joined by "+" (as claims_across.py writes)
ACROSS_CLAIMS = {
    "+".join(studies_of_kind(kind)): (kind, f"{RESULTS}/claims_across/{kind}.csv")
    for kind in ACROSS_KINDS
}


rule claims_across:
    input:
        cubes=lambda wc: [f"{RESULTS}/{name}/cube.nc" for name in studies_of_kind(wc.kind)],
        code=lambda wc: CLAIMS_CODE[studies_of_kind(wc.kind)[0]],
    output:
        f"{RESULTS}/claims_across/{{kind}}.csv",
    log:
        f"{RESULTS}/logs/claims_across/{{kind}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_across/{{kind}}.tsv",
    wildcard_constraints:
        kind=alternatives(ACROSS_KINDS),
    params:
        studies=lambda wc: {
            name: claims_inputs(STUDIES[name]) for name in studies_of_kind(wc.kind)
        },
        scale=CLAIMS_SCALE,
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/claims_across.py"


rule claims_scorecard:
    input:
        claims=[f"{RESULTS}/{name}/claims.csv" for name in STUDIES]
        + [path for _, path in ACROSS_CLAIMS.values()],
        code=os.path.join(workflow.basedir, "src", "depthlab", "report.py"),
    output:
        csv=f"{RESULTS}/claims.csv",
        html=report(
            f"{RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="Claims scorecard",
        ),
        fragment=f"{RESULTS}/claims_fragment.html",
    log:
        f"{RESULTS}/logs/claims_scorecard.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_scorecard/claims_scorecard.tsv",
    params:
        studies=list(STUDIES) + list(ACROSS_CLAIMS),
        kinds={
            **{name: study["kind"] for name, study in STUDIES.items()},
            **{name: kind for name, (kind, _) in ACROSS_CLAIMS.items()},
        },
        figures={
            f"{name}/{fig}": f"{RESULTS}/{name}/figures/{fig}.png"
            for name, study in STUDIES.items()
            for fig in study.get("figures", {})
        },
    group:
        "summaries"
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/claims_scorecard.py"
