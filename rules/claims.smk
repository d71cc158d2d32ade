# The papers' claims, checked on each study's cube (depthlab.claims), and the scorecard of
# every study that the report shows first (report/workflow.rst embeds it). Generic: the
# study plug-in's `claims(cube, study)` says what a study claims.
#
# Needs from common.smk: RESULTS, STUDIES, study_plugin(name), claims_inputs(study).

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


rule claims_scorecard:
    input:
        claims=[f"{RESULTS}/{name}/claims.csv" for name in STUDIES],
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
        studies=list(STUDIES),
        kinds={name: study["kind"] for name, study in STUDIES.items()},
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
