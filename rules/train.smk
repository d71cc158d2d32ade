# One job trains every member of one architecture cell that the study packs together
# (training.pack), as a single vectorized model; results land per member.


rule select_lr:
    input:
        data=dataset_file,
    output:
        f"{R}/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.h5",
    log:
        f"{R}/logs/{{study}}/lr_search/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        training=lambda wc: dlc.training_settings(STUDIES[wc.study]),
        search=lambda wc: dlc.lr_selection(STUDIES[wc.study]),
    threads: config.get("threads", {}).get("train", 1)
    resources:
        runtime=240,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/select_lr.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        f"{R}/{{study}}/runs/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{job}}.h5",
    log:
        f"{R}/logs/{{study}}/train/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{job}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        training=lambda wc: dlc.training_settings(STUDIES[wc.study]),
        members=job_members,
        local_stability=lambda wc: stability_spec(wc.study, wc.dataset),
        # Outside the output so a killed job keeps it and the rerun resumes.
        checkpoint=lambda wc: (
            f"{R}/{wc.study}/checkpoints/{wc.dataset}/N{wc.n_train}/"
            f"L{wc.depth}_H{wc.width}/{wc.job}.pt"
        ),
    threads: config.get("threads", {}).get("train", 1)
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/train.py"


# s(v) of the label rule itself (Mori-Ueda Fig. 5), on the same test inputs as the nets.
rule label_stability:
    input:
        data=dataset_file,
    output:
        f"{R}/{{study}}/label_stability/{{dataset}}.h5",
    log:
        f"{R}/logs/{{study}}/label_stability/{{dataset}}.log",
    wildcard_constraints:
        study=_alternatives(MORI_UEDA_STUDIES),
    params:
        spec=lambda wc: STUDIES[wc.study]["local_stability"],
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/depthlab.yaml"
    script:
        "../workflow/scripts/label_stability.py"
