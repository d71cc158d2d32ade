"""Do the verdicts survive new seeds? The laptop config (or any config) under several
``seed_offset`` values, and a table of whether each claim's verdict agrees.

    python -m depthlab.seed_robustness --offsets 0 1000 --cores 2        # make seeds-check

Each offset runs the whole workflow (``snakemake --config seed_offset=K results=...``) into
its own results directory (offset 0: the config's own ``results``, so a finished ``make run``
is reused), then the scorecards (``claims.csv``) are joined on (study, claim_id). A row
*agrees* when every offset gives the same verdict; a *flip* is holds under one offset and
fails under another (the hard disagreement: a verdict that is noise); a row resolved under
one offset and ``not resolved`` under another is *unstable*. The table goes to
``{out}/seed_agreement.csv`` and a Markdown summary to ``{out}/seed_agreement.md``, with the
CPU model of the machine (float results differ in their last digits between CPU types).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from depthlab.claims import FAILS, HOLDS, NOT_RESOLVED, read_claims
from depthlab.provenance import atomic_output, cpu_model

__all__ = ["agreement_table", "main", "results_dir", "summary_markdown"]


def results_dir(base: str, offset: int) -> str:
    return base if offset == 0 else f"{base}_seed_offset_{offset}"


def agreement_table(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim present under any offset: its verdict under each offset and the
    agreement class (``agrees``, ``flips`` or ``unstable``; ``missing`` when a claim is
    absent under some offset) and the robust verdict (the common one when every offset
    agrees, else not resolved)."""
    keyed = []
    for i, (offset, frame) in enumerate(tables.items()):
        labels = [c for c in ("kind", "origin") if c in frame] if i == 0 else []
        part = frame[["study", "claim_id", *labels, "verdict", "measured", "uncertainty"]]
        part = part.rename(columns={"verdict": f"verdict_{offset}",
                                    "measured": f"measured_{offset}",
                                    "uncertainty": f"uncertainty_{offset}"})
        keyed.append(part.set_index(["study", "claim_id"]))
    table = keyed[0]
    for part in keyed[1:]:
        table = table.join(part, how="outer")
    verdict_cols = [f"verdict_{o}" for o in tables]

    def classify(row) -> str:
        verdicts = [row[c] for c in verdict_cols]
        if any(not isinstance(v, str) for v in verdicts):
            return "missing"
        if len(set(verdicts)) == 1:
            return "agrees"
        if HOLDS in verdicts and FAILS in verdicts:
            return "flips"
        return "unstable"

    table["agreement"] = table.apply(classify, axis=1)
    # The verdict a reader can rely on: the one every offset gives; a verdict that changes
    # with the seeds is noise at this scale and reads as not resolved.
    table["robust_verdict"] = [
        row[verdict_cols[0]] if row["agreement"] == "agrees" else NOT_RESOLVED
        for _, row in table.iterrows()]
    return table.reset_index()


def summary_markdown(table: pd.DataFrame, offsets: Sequence[int], cpu: str) -> str:
    lines = [f"Seed offsets {', '.join(map(str, offsets))} on {cpu}.", "",
             "| study | claims | agree | unstable (resolved / not resolved) | flip (holds / "
             "fails) | robust: holds | robust: fails | robust: not resolved |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for study, part in table.groupby("study", sort=False):
        counts = part["agreement"].value_counts()
        robust = part["robust_verdict"].value_counts()
        lines.append(f"| {study} | {len(part)} | {counts.get('agrees', 0)} | "
                     f"{counts.get('unstable', 0)} | {counts.get('flips', 0)} | "
                     f"{robust.get(HOLDS, 0)} | {robust.get(FAILS, 0)} | "
                     f"{robust.get(NOT_RESOLVED, 0)} |")
    bad = table[table["agreement"].isin(["flips", "unstable"])]
    if len(bad):
        lines += ["", "Rows whose verdict depends on the seeds:", ""]
        for _, row in bad.iterrows():
            verdicts = " / ".join(str(row[f"verdict_{o}"]) for o in offsets)
            lines.append(f"- `{row['study']}.{row['claim_id']}`: {verdicts}")
    lines.append("")
    lines.append(f"(`{NOT_RESOLVED}` is a verdict too: a row that is not resolved under every "
                 "offset agrees. The robust verdict is the verdict every offset gives, and "
                 f"`{NOT_RESOLVED}` where they differ.)")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 1000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--results", default="results",
                        help="the config's results directory (offset 0 runs there)")
    parser.add_argument("--configfile", nargs="*", default=[],
                        help="config files (default: the workflow's config/config.yaml)")
    parser.add_argument("--snakefile", default=str(Path(__file__).resolve().parents[2] /
                                                   "Snakefile"),
                        help="the workflow (default: this checkout's Snakefile)")
    parser.add_argument("--no-run", action="store_true",
                        help="only compare the scorecards already on disk")
    args = parser.parse_args(argv)
    if len(set(args.offsets)) < 2:
        parser.error("--offsets needs at least two different offsets")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    tables = {}
    for offset in args.offsets:
        out = results_dir(args.results, offset)
        if not args.no_run:
            cmd = [snakemake, "--snakefile", args.snakefile, "--cores", str(args.cores)]
            if args.configfile:
                cmd += ["--configfile", *args.configfile]
            cmd += ["--config", f"seed_offset={offset}", f"results={out}"]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        tables[offset] = read_claims(Path(out) / "claims.csv")
    table = agreement_table(tables)
    cpu = cpu_model()
    table["cpu"] = cpu
    report_dir = Path(args.results)
    with atomic_output(report_dir / "seed_agreement.csv") as tmp:
        table.to_csv(tmp, index=False)
    text = summary_markdown(table, args.offsets, cpu)
    with atomic_output(report_dir / "seed_agreement.md") as tmp:
        Path(tmp).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
