"""Operational qualification: the shipped reference tubes (``reference/``: made by the project's
generator at release, with their SHA-256s and acceptance criteria in ``cases.json``) go through
the real processing chain, the batch stages ``mhladr run`` runs (intake, calibrate, measure,
finish pending, reports; :class:`pipeline.processing.Processor`), the results store, the
screening rules and ``audit verify``, in a scratch home with the default settings (the criteria
are stated for them). Cases are data: add one to ``cases.json`` (``data_samples/oq_reference.py``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.validation.checks import Check, check

OQ = "OQ"
REFERENCE = Path(__file__).resolve().parent / "reference"


def reference_intact(reference: Path, doc: dict[str, Any]) -> list[Check]:
    """Every reference file present with its release SHA-256."""
    bad = [name for name, digest in doc["files"].items()
           if not (reference / name).is_file() or hashlib.sha256((reference / name).read_bytes()).hexdigest() != digest]
    return [check(OQ, "reference set intact", f"{len(doc['files'])} files with their release SHA-256",
                  "; ".join(f"changed or missing: {n}" for n in bad) or "all match", not bad)]


def judge(case: dict[str, Any], outcome: dict[str, Any] | None, screening: dict[str, str],
          tolerance: float) -> list[Check]:
    """The case's expectations against what the chain made of its tube."""
    name, want = case["name"], case["expect"]
    label = f"{name}: {case['what']}"
    if not case.get("enabled", True):
        return [check(OQ, label, json.dumps(want), f"not run: {case['pending']}", None)]
    if outcome is None:
        return [check(OQ, label, f"{case['tube']} processed", "no result for this file", False)]
    fields = outcome
    found = []
    found.append(check(OQ, f"{name} status", f"status {want['status']}", fields["status"],
                       fields["status"] == want["status"]))
    if "qc" in want:
        qc = (fields.get("qc") or {}).get("status")
        reasons = "; ".join(fields.get("reasons", []))
        found.append(check(OQ, f"{name} QC", f"QC {want['qc']}", f"QC {qc}" + (f" ({reasons})" if reasons else ""),
                           qc == want["qc"]))
    if "code" in want:
        first = (fields.get("reasons") or [""])[0]
        found.append(check(OQ, f"{name} error code", f"error code {want['code']}", first[:160],
                           first.split(":")[0] == want["code"]))
    if "abc" in want:
        truth, got = want["abc"], fields.get("abc")
        off = abs(got - truth) / truth if got is not None else None
        found.append(check(OQ, f"{name} AB/C", f"within {tolerance:.0%} of the true {truth:,.0f} AB/C",
                           f"{got:,.0f} AB/C ({off:+.1%} off)" if off is not None else "no AB/C",
                           off is not None and off <= tolerance))
    if "below_threshold" in want:
        found.append(check(OQ, f"{name} flag", f"below_threshold {want['below_threshold']}",
                           str(fields.get("below_threshold")), fields.get("below_threshold") == want["below_threshold"]))
    if "lot" in want:
        found.append(check(OQ, f"{name} bead lot", f"lot {want['lot']}", str(fields.get("lot")),
                           fields.get("lot") == want["lot"]))
    if "reason_contains" in want:
        text = "; ".join(fields.get("reasons", []))
        found.append(check(OQ, f"{name} reason", f"the reason names {', '.join(want['reason_contains'])}", text[:200],
                           all(w in text for w in want["reason_contains"])))
    if "screening" in want:
        status = screening.get(fields.get("patient_id") or "", "none")
        found.append(check(OQ, f"{name} screening", f"patient {want['screening']}", status,
                           status == want["screening"]))
    return found


def run(scratch: Path, reference: Path = REFERENCE) -> list[Check]:
    """Copy the reference set into ``scratch``, run it through the chain there, judge every case."""
    from pipeline.config import load_settings
    from pipeline.processing import Processor

    doc = json.loads((reference / "cases.json").read_text(encoding="utf-8"))
    found = reference_intact(reference, doc)
    if found[0].passed is False:
        return found
    inbox, home = scratch / "inbox", scratch / "home"
    inbox.mkdir(parents=True)
    for name in doc["files"]:
        shutil.copyfile(reference / name, inbox / name)
    settings = load_settings(env={"MHLADR_HOME": str(home)})
    processor = Processor(settings, registry_csv=inbox / "registry.csv", lots_csv=inbox / "lots.csv")
    try:
        intake = processor.intake(sorted(inbox.glob("*.fcs")))
        results = {Path(p).name: r for p, r in intake.results.items()}
        for done in (*processor.calibrate(intake.beads).values(), *processor.measure(intake.samples).values(),
                     *processor.finish_pending()):
            results[Path(done.file).name] = done
        processor.reports(results.values())
        screening = {r.patient_id: r.status for r in processor.store.screening.log()}
        for case in doc["cases"]:
            outcome = results.get(case["tube"])
            found += judge(case, outcome.as_dict() if outcome else None, screening, doc["abc_tolerance"])
        verified = processor.store.audit.verify()
        found.append(check(OQ, "audit verify", "ok: chain and every row match",
                           f"{verified.entries} entries, {len(verified.problems)} problems", verified.ok))
    finally:
        processor.close()
    return found
