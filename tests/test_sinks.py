"""Sinks and the outbox: a real local HTTP server, FHIR R4 files, the eCRF CSV, `mhladr export`."""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from fhir.resources.R4B.observation import Observation

from science.qc import QC
from app.cli import main
from pipeline.eligibility import PatientFacts
from pipeline.sinks import SinkError
from pipeline.sinks.csv_export import CsvSink
from pipeline.sinks.fhir import FhirSink, observation
from pipeline.sinks.outbox import deliver_outbox, enqueue_results
from pipeline.sinks.webhook import WebhookSink
from pipeline.store.outbox import versioned
from tests.store_fixtures import cli_env, clock, db_url, measurement, settings, store  # noqa: F401


class Receiver:
    """A webhook endpoint on 127.0.0.1 that fails on demand and dedupes by Idempotency-Key."""

    def __init__(self) -> None:
        self.fail_next = 0                 # answer 503 without processing
        self.lose_response_next = 0        # process, then answer 500 (the reply is "lost")
        self.attempts: Counter[str] = Counter()
        self.accepted: dict[str, dict] = {}
        self.duplicates: Counter[str] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with receiver.lock:
                    receiver.attempts[key] += 1
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        code = 503
                    else:
                        if key in receiver.accepted:
                            receiver.duplicates[key] += 1
                        else:
                            receiver.accepted[key] = body
                        code = 200
                        if receiver.lose_response_next > 0:
                            receiver.lose_response_next -= 1
                            code = 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/results"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def seed(store) -> None:
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True),
                           PatientFacts("PT-2", date(2026, 3, 1), 8, True, "", date(2026, 3, 8))],
                          today=date(2026, 3, 2))
    store.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 6500.0), today=date(2026, 3, 7))
    store.measurements.add(measurement(2, "PT-2", date(2026, 3, 7), 9100.0), today=date(2026, 3, 7))
    store.measurements.add(measurement(3, "PT-1", date(2026, 3, 8), 5200.0, qc=QC("review", ("1,500 monocytes",))),
                            today=date(2026, 3, 8))
    store.measurements.add(measurement(4, "PT-2", date(2026, 3, 10), 15000.0), today=date(2026, 3, 10))  # blinded


def test_webhook_retries_and_each_result_arrives_once(store, receiver, clock):
    seed(store)
    receiver.fail_next = 2
    receiver.lose_response_next = 1
    sink = WebhookSink(receiver.url, tries=4, backoff_s=0.01)
    assert enqueue_results(store, ("webhook",)) == 3          # the blinded result stays out
    report = deliver_outbox(store, clock.now, {"webhook": sink})
    sink.close()
    keys = [item.idempotency_key for item in store.outbox.list("webhook")]
    assert sorted(report.delivered) == sorted(keys) and report.failed == () and report.queued == 0
    assert set(receiver.accepted) == set(keys)                 # each result received...
    assert sum(receiver.duplicates.values()) == 1              # ...the lost reply's retry deduped by key
    assert receiver.attempts[keys[0]] == 4                     # 2 x 503, 1 lost reply, 1 duplicate ack
    assert {b["patient_id"] for b in receiver.accepted.values()} == {"PT-1", "PT-2"}
    assert all(b["collection_date"] != "2026-03-10" for b in receiver.accepted.values())
    assert enqueue_results(store, ("webhook",)) == 0           # re-export: same keys, nothing new


def test_failed_push_stays_in_outbox_until_delivered(store, receiver, clock):
    seed(store)
    receiver.fail_next = 10**6
    sink = WebhookSink(receiver.url, tries=2, backoff_s=0.01)
    enqueue_results(store, ("webhook",))
    first = deliver_outbox(store, clock.now, {"webhook": sink}, base_delay=timedelta(minutes=1))
    assert len(first.failed) == 3 and first.delivered == () and first.queued == 3
    items = store.outbox.list("webhook")
    assert all(i.attempts == 1 and i.last_error and "503" in i.last_error for i in items)
    assert all(i.next_attempt == clock.now + timedelta(minutes=1) for i in items)
    # not due yet: nothing is sent
    sent = sum(receiver.attempts.values())
    assert deliver_outbox(store, clock.now + timedelta(seconds=30), {"webhook": sink}).failed == ()
    assert sum(receiver.attempts.values()) == sent
    # second failure doubles the delay
    deliver_outbox(store, clock.now + timedelta(minutes=1), {"webhook": sink}, base_delay=timedelta(minutes=1))
    assert all(i.next_attempt == clock.now + timedelta(minutes=3) for i in store.outbox.list("webhook"))
    receiver.fail_next = 0
    final = deliver_outbox(store, clock.now + timedelta(minutes=3), {"webhook": sink})
    sink.close()
    assert len(final.delivered) == 3 and final.queued == 0
    assert set(receiver.accepted) == {i.idempotency_key for i in store.outbox.list("webhook")}
    assert not receiver.duplicates
    assert all(i.delivered_at is not None for i in store.outbox.list("webhook"))


def test_changed_result_gets_a_new_version_of_the_same_record(store, clock):
    seed(store)
    enqueue_results(store, ("csv",))
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    store.measurements.review(review_id, "approve", "smear checked", "tech-a", today=date(2026, 3, 8))
    assert enqueue_results(store, ("csv",)) == 1
    items = [i for i in store.outbox.list("csv") if i.measurement_id == review_id]
    payloads = [i.payload for i in items]
    assert [p["review"] for p in payloads] == [None, "approve"]
    assert [p["decisive"] for p in payloads] == [False, True]
    assert [(i.version, p["version"], p["status"]) for i, p in zip(items, payloads)] == [
        (1, 1, "preliminary"), (2, 2, "final")]
    sha = payloads[0]["file_sha256"]
    assert {p["result_id"] for p in payloads} == {sha}
    assert [i.idempotency_key for i in items] == [f"mhladr-{sha}-v1", f"mhladr-{sha}-v2"]


def test_a_newly_configured_sink_gets_the_newest_version_only(store):
    seed(store)
    enqueue_results(store, ("csv",))
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    store.measurements.review(review_id, "approve", "smear checked", "tech-a", today=date(2026, 3, 8))
    assert enqueue_results(store, ("csv", "fhir")) == 1 + 3         # csv: version 2; fhir: each newest version
    fhir = store.outbox.list("fhir")
    assert sorted((i.measurement_id, i.version) for i in fhir) == [(1, 1), (2, 1), (3, 2)]
    assert enqueue_results(store, ("csv", "fhir")) == 0


def test_fhir_observation_is_valid_r4_with_sensible_coding(store, tmp_path, clock):
    seed(store)
    enqueue_results(store, ("fhir",))
    report = deliver_outbox(store, clock.now, {"fhir": FhirSink(tmp_path / "fhir")})
    files = sorted((tmp_path / "fhir").glob("*.json"))
    assert len(files) == len(report.delivered) == 3
    docs = [json.loads(f.read_text()) for f in files]
    for f, doc in zip(files, docs):
        Observation.model_validate(doc)                        # R4 (R4B) model
        assert doc["id"] == f.stem == doc["identifier"][0]["value"] and doc["meta"]["versionId"] == "1"
        assert doc["code"]["text"] == "Monocyte HLA-DR (AB/C)"
        assert doc["subject"]["identifier"]["value"] in {"PT-1", "PT-2"}
    low = next(d for d in docs if d.get("valueQuantity", {}).get("value") == pytest.approx(6500.0))
    assert low["status"] == "final" and low["effectiveDateTime"] == "2026-03-07"
    assert low["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert low["valueQuantity"]["code"] == "{antibodies}/{cell}"
    assert low["interpretation"][0]["coding"][0]["code"] == "L"
    high = next(d for d in docs if d.get("valueQuantity", {}).get("value") == pytest.approx(9100.0))
    assert "interpretation" not in high
    review = next(d for d in docs if d["status"] == "preliminary")
    assert review["valueQuantity"]["value"] == pytest.approx(5200.0)


def test_fhir_qc_fail_has_no_value():
    content = {"patient_id": "PT-1", "collection_date": "2026-03-07", "abc": None, "threshold": 8000.0,
               "below_threshold": None, "qc": {"status": "fail", "reasons": ["120 monocytes"]}, "review": None,
               "file_sha256": "ab" * 32}
    obs = observation(versioned(content, None, 1))
    assert obs.status == "cancelled" and obs.valueQuantity is None and obs.dataAbsentReason is not None


def _fhir_file(folder, store, measurement_id):
    sha = store.measurements.get(measurement_id).file_sha256
    return json.loads((folder / f"{sha}.json").read_text())


def test_fhir_lifecycle_one_observation_updated_in_place(store, receiver, tmp_path, clock):
    """preliminary -> final -> cancelled -> amended, each version a valid R4 Observation with the
    same id and identifier, delivered once per sink (the webhook key names the version)."""
    seed(store)
    folder = tmp_path / "fhir"
    sinks = {"fhir": FhirSink(folder), "webhook": WebhookSink(receiver.url, tries=1)}
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    steps = [None, ("approve", "smear checked", False), ("reject", "clot found on re-read", True),
             ("approve", "clot was a bubble", True)]
    seen = []
    for step in steps:
        if step is not None:
            decision, reason, supersede = step
            store.measurements.review(review_id, decision, reason, "tech-a", supersede=supersede,
                                      today=date(2026, 3, 9))
        enqueue_results(store, tuple(sinks))
        deliver_outbox(store, clock.now, sinks)
        seen.append(_fhir_file(folder, store, review_id))
    sinks["webhook"].close()
    for doc in seen:
        Observation.model_validate(doc)
    assert [d["status"] for d in seen] == ["preliminary", "final", "cancelled", "amended"]
    assert [d["meta"]["versionId"] for d in seen] == ["1", "2", "3", "4"]
    assert len({d["id"] for d in seen}) == 1 and len({json.dumps(d["identifier"]) for d in seen}) == 1
    assert [("valueQuantity" in d, "dataAbsentReason" in d) for d in seen] == [
        (True, False), (True, False), (False, True), (True, False)]
    sha = seen[0]["id"]
    versions = [k for k in receiver.accepted if k.startswith(f"mhladr-{sha}-")]
    assert versions == [f"mhladr-{sha}-v{n}" for n in (1, 2, 3, 4)] and not receiver.duplicates
    assert [receiver.accepted[k]["status"] for k in versions] == ["preliminary", "final", "cancelled", "amended"]
    # only the screening status moves: a new version, the Observation keeps its status
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True, "pregnancy")], today=date(2026, 3, 9))
    assert enqueue_results(store, ("fhir",)) == 2                   # PT-1's two results
    deliver_outbox(store, clock.now, {"fhir": sinks["fhir"]})
    last = _fhir_file(folder, store, review_id)
    assert (last["meta"]["versionId"], last["status"]) == ("5", "amended")
    Observation.model_validate(last)


def test_versions_are_delivered_in_order_and_never_overwritten_by_older_ones(store, receiver, tmp_path, clock):
    seed(store)
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    hook = WebhookSink(receiver.url, tries=1)
    enqueue_results(store, ("webhook",))
    receiver.fail_next = 10**6
    deliver_outbox(store, clock.now, {"webhook": hook}, base_delay=timedelta(minutes=5))
    store.measurements.review(review_id, "approve", "smear checked", "tech-a", today=date(2026, 3, 9))
    enqueue_results(store, ("webhook",))
    receiver.fail_next = 0
    early = deliver_outbox(store, clock.now + timedelta(minutes=1), {"webhook": hook})
    assert early.delivered == ()                            # version 2 waits for version 1's retry
    late = deliver_outbox(store, clock.now + timedelta(minutes=5), {"webhook": hook})
    hook.close()
    sha = store.measurements.get(review_id).file_sha256
    order = [k for k in late.delivered if sha in k]
    assert order == [f"mhladr-{sha}-v1", f"mhladr-{sha}-v2"] and late.queued == 0
    # an older version delivered late never replaces the newer file
    sink = FhirSink(tmp_path / "fhir")
    v1, v2 = (i.payload for i in store.outbox.list("webhook") if i.measurement_id == review_id)
    sink.deliver("k2", v2)
    sink.deliver("k1", v1)
    assert _fhir_file(tmp_path / "fhir", store, review_id)["meta"]["versionId"] == "2"


def test_csv_sink_appends_each_key_once(tmp_path):
    sink = CsvSink(tmp_path / "ecrf.csv")
    payload = {"patient_id": "PT-1", "collection_date": "2026-03-07", "icu_day": 6, "in_window": True,
               "abc": 6500.0, "abc_interval": [6200.0, 6800.0], "below_threshold": True,
               "qc": {"status": "pass", "reasons": []}, "review": None, "decisive": True,
               "screening_status": "eligible", "file_sha256": "ab" * 32}
    sink.deliver("key-1", payload)
    sink.deliver("key-1", payload)
    sink.deliver("key-2", {**payload, "abc": 7000.0})
    rows = list(csv.DictReader((tmp_path / "ecrf.csv").open()))
    assert [r["idempotency_key"] for r in rows] == ["key-1", "key-2"]
    assert rows[0]["below_threshold"] == "yes" and float(rows[0]["abc_low"]) == pytest.approx(6200.0)


def test_csv_sink_reads_existing_keys_once_and_closes_as_a_no_op(tmp_path):
    payload = {"patient_id": "PT-1", "collection_date": "2026-03-07", "abc": 6500.0,
               "qc": {"status": "pass", "reasons": []}}
    CsvSink(tmp_path / "ecrf.csv").deliver("key-1", payload)
    sink = CsvSink(tmp_path / "ecrf.csv")                     # a later export over the same file
    sink.deliver("key-1", payload)
    sink.deliver("key-2", payload)
    sink.deliver("key-2", payload)
    assert sink.close() is None and FhirSink(tmp_path / "fhir").close() is None
    rows = list(csv.DictReader((tmp_path / "ecrf.csv").open()))
    assert [r["idempotency_key"] for r in rows] == ["key-1", "key-2"]


def test_each_version_is_queued_once_per_sink_in_one_audited_transaction(store):
    seed(store)
    entries = len(store.audit.entries())
    assert enqueue_results(store, ("csv", "fhir")) == 6
    items = store.outbox.list()
    assert sorted((i.sink, i.measurement_id, i.version) for i in items) == [
        (s, mid, 1) for s in ("csv", "fhir") for mid in (1, 2, 3)]
    added = store.audit.entries()[entries:]
    assert [e.action for e in added] == ["enqueue"] * 6 and all(e.row.table == "outbox" for e in added)
    assert len({e.at for e in added}) == 1 and store.audit.verify().ok
    assert enqueue_results(store, ("csv", "fhir")) == 0 and store.outbox.enqueue_results([], ("csv",)) == 0
    assert (store.outbox.undelivered_count(("csv",)), store.outbox.undelivered_count(("csv", "fhir"))) == (3, 6)
    store.outbox.mark_delivered(store.outbox.list("csv")[0].id, store.clock())
    assert store.outbox.undelivered_count(("csv", "webhook")) == 2 and store.outbox.undelivered_count(()) == 0


def test_cli_export_all_and_blinding(store, cli_env, tmp_path, monkeypatch, capsys):
    seed(store)
    monkeypatch.setenv("MHLADR_FHIR_DIR", str(tmp_path / "fhir"))
    monkeypatch.setenv("MHLADR_CSV_EXPORT", str(tmp_path / "ecrf.csv"))
    assert main(["export", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sinks"] == ["fhir", "csv"] and doc["queued"] == 6 and doc["delivered"] == 6
    assert len(list(csv.DictReader((tmp_path / "ecrf.csv").open()))) == 3
    assert main(["export", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queued"] == 0
    assert "15000" not in (tmp_path / "ecrf.csv").read_text()
    # single-user mode: an unblinded export is audited under --actor (or the login)
    assert main(["export", "--sink", "csv", "--unblinded", "--actor", "dsmb-stat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 1
    entry = [e for e in store.audit.entries() if e.action == "unblinded_export"][-1]
    assert entry.actor == "dsmb-stat" and entry.entity_id == "PT-2"
    assert "15000.0" in (tmp_path / "ecrf.csv").read_text()


def test_csv_rebuild_rewrites_the_ecrf_file_from_the_store(store, cli_env, tmp_path, monkeypatch, capsys):
    seed(store)
    target = tmp_path / "ecrf.csv"
    monkeypatch.setenv("MHLADR_CSV_EXPORT", str(target))
    assert main(["export", "--sink", "csv", "--json"]) == 0
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    store.measurements.review(review_id, "approve", "smear checked", "tech-a", today=date(2026, 3, 9))
    assert main(["export", "--sink", "csv", "--json"]) == 0
    written = target.read_text()
    rows = list(csv.DictReader(written.splitlines()))
    assert [(r["version"], r["status"]) for r in rows if r["review"]] == [("2", "final")]
    assert len(rows) == 4 and [r["version"] for r in rows].count("1") == 3
    target.unlink()
    capsys.readouterr()
    assert main(["export", "--sink", "csv", "--json"]) == 0      # nothing new to queue: the file stays gone
    assert json.loads(capsys.readouterr().out)["queued"] == 0 and not target.exists()
    assert main(["export", "--sink", "csv", "--rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sinks": ["csv"], "rebuilt": 4}
    assert target.read_text() == written                         # the same file, from the store
    assert main(["export", "--sink", "csv", "--rebuild", "--unblinded", "--actor", "dsmb-stat"]) == 0
    assert "15000.0" in target.read_text() and len(target.read_text().splitlines()) == 1 + 5
    assert main(["export", "--sink", "csv", "--rebuild"]) == 0  # blinded again: the post-randomization row goes
    assert target.read_text() == written
    assert main(["export", "--sink", "fhir", "--rebuild"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "--rebuild: --rebuild rewrites the eCRF CSV: use it with --sink csv"


def test_csv_of_an_earlier_layout_asks_for_a_rebuild(tmp_path):
    target = tmp_path / "ecrf.csv"
    target.write_text("patient_id,abc,idempotency_key\nPT-1,6500.0,mhladr-old\n")
    with pytest.raises(SinkError, match="export --sink csv --rebuild"):
        CsvSink(target).deliver("k", {"qc": {"status": "pass", "reasons": []}})


def test_cli_export_unconfigured_sink_exits_2(cli_env, capsys):
    assert main(["export", "--sink", "webhook", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad_input"
