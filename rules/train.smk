# One job trains every member of one architecture cell that the study packs together
# (training.pack), as a single vectorized model; results land per member.


rule train:
    input:
        data=dataset_file,
    output:
        f"{R}/{{study}}/runs/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{job}}.h5",
    log:
        f"{R}/logs/{{study}}/train/{{dataset}}/N{{n_train}}/L{{depth}}_H{{width}}/{{job}}.log",
    params:
        training=lambda wc: dlc.training_settings(STUDIES[wc.study]),
        members=job_members,
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
