"""The show/hide gate on rest-of-line cases: trained on one project, judged on the other.

A measurement run by hand (minutes to tens of minutes), not part of the board (bench/run.py).

Reads a `measure_rest_of_line.py` run (the cases file and one config's per-case records, which
hold each answer's token log-probabilities and whether it was a prefix of the gold), builds
the gate's features for every shown answer, trains `goldiff.gate.fit` on one repository's
cases and scores the other's (and the reverse), so every score is out of sample. Prints the
curve (threshold → share shown, shown accept rate, chars saved over all requests) and the
operating point the gate's own threshold rule picks on its training half; writes a plot.

    python bench/measure_gate.py --cases /tmp/cases100.jsonl --records /tmp/rol/smollm2-prefix-heal.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from goldiff.gate import GateRow, choose_threshold, features, fit
from goldiff.metrics import Tally
from restofline import read_cases  # beside this script: bench/ is run as scripts


def gate_curve(scored: list[tuple[float, str, str]]) -> list[dict[str, float]]:
    """Accept rate of shown suggestions vs chars saved as a show/hide threshold rises.

    `scored` holds (gate score, suggestion, gold) per case; a suggestion is shown at a
    threshold when its score is at least the threshold. Unlike the gate's own curve
    (`goldiff.gate.curve`, from recorded outcomes), a case is judged by its gold.
    """
    curve = []
    for t in [i / 20 for i in range(20)]:
        tally = Tally()
        for score, text, gold in scored:
            tally.add(text if score >= t else "", gold)
        s = tally.summary()
        curve.append(
            {
                "threshold": t,
                "shown": s["shown"] / (s["requests"] or 1),
                "shown_accept_rate": s["shown_accept_rate"] or 0.0,
                "chars_saved": s["chars_saved"],
                "accept_proxy": s["accept_proxy"],
            }
        )
    return curve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=Path, required=True)
    ap.add_argument("--records", type=Path, required=True)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)
    cases = read_cases(args.cases)
    records = [json.loads(line) for line in args.records.read_text().splitlines() if line.strip()]
    cases = cases[: len(records)]
    items: list[dict[str, Any]] = []
    for case, rec in zip(cases, records, strict=True):
        x = features(
            prefix=case.prefix,
            suffix=case.suffix,
            text=rec["text"],
            logprobs=rec["logprobs"],
            language="python",
        )
        items.append(
            {"repo": case.repo, "x": x, "text": rec["text"], "gold": case.gold, "ok": rec["accepted"]}
        )
    repos = sorted({i["repo"] for i in items})
    scored: list[tuple[float, str, str]] = []
    at_threshold = Tally()
    baseline = Tally()
    for held in repos:
        train = [i for i in items if i["repo"] != held and i["text"]]
        test = [i for i in items if i["repo"] == held]
        gate = fit(
            [GateRow(i["x"], i["ok"], len(i["text"]) if i["ok"] else 0, len(i["gold"])) for i in train]
        )
        threshold = choose_threshold([gate.score(i["x"]) for i in train], [i["ok"] for i in train])
        for i in test:
            score = gate.score(i["x"]) if i["text"] else 0.0
            scored.append((score, i["text"], i["gold"]))
            at_threshold.add(i["text"] if i["text"] and score >= threshold else "", i["gold"])
            baseline.add(i["text"], i["gold"])
    curve = gate_curve(scored)
    print(f"{len(items)} cases, {sum(bool(i['text']) for i in items)} shown without a gate")
    print("threshold  shown  shown-accept  chars-saved  accept-proxy")
    for p in curve:
        print(
            f"{p['threshold']:9.2f}  {p['shown']:5.2f}  {p['shown_accept_rate']:12.3f}  "
            f"{p['chars_saved']:11.3f}  {p['accept_proxy']:12.3f}"
        )
    b, g = baseline.summary(), at_threshold.summary()
    print(
        f"no gate: shown {b['shown']}, shown-accept {b['shown_accept_rate'] or 0:.3f}, "
        f"chars {b['chars_saved']:.3f}\n"
        f"gate at its own threshold: shown {g['shown']}, shown-accept {g['shown_accept_rate'] or 0:.3f}, "
        f"chars {g['chars_saved']:.3f}"
    )
    if args.plot:
        from goldiff.evaluate import plot_gate_curve

        plot_gate_curve(curve, args.plot)
    out = args.records.with_suffix(".gate.json")
    out.write_text(json.dumps({"curve": curve, "no_gate": b, "gate": g}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
