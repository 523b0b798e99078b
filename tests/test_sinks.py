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
from pipeline.sinks.csv_export import CsvSink
from pipeline.sinks.fhir import FhirSink, observation
from pipeline.sinks.outbox import deliver_outbox, enqueue_results
from pipeline.sinks.webhook import WebhookSink
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


def test_changed_result_gets_a_new_key(store, clock):
    seed(store)
    enqueue_results(store, ("csv",))
    review_id = next(m.id for m in store.measurements.list() if m.qc.status == "review")
    store.measurements.review(review_id, "approve", "smear checked", "tech-a", today=date(2026, 3, 8))
    assert enqueue_results(store, ("csv",)) == 1
    payloads = [i.payload for i in store.outbox.list("csv") if i.payload["measurement_id"] == review_id]
    assert [p["review"] for p in payloads] == [None, "approve"]
    assert [p["decisive"] for p in payloads] == [False, True]


def test_fhir_observation_is_valid_r4_with_sensible_coding(store, tmp_path, clock):
    seed(store)
    enqueue_results(store, ("fhir",))
    report = deliver_outbox(store, clock.now, {"fhir": FhirSink(tmp_path / "fhir")})
    files = sorted((tmp_path / "fhir").glob("*.json"))
    assert len(files) == len(report.delivered) == 3
    docs = [json.loads(f.read_text()) for f in files]
    for doc in docs:
        Observation.model_validate(doc)                        # R4 (R4B) model
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
    payload = {"patient_id": "PT-1", "collection_date": "2026-03-07", "abc": None, "threshold": 8000.0,
               "below_threshold": None, "qc": {"status": "fail", "reasons": ["120 monocytes"]}, "review": None}
    obs = observation("k", payload)
    assert obs.status == "cancelled" and obs.valueQuantity is None and obs.dataAbsentReason is not None


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


def test_enqueue_many_queues_each_sink_and_key_once_in_one_transaction(store):
    assert store.outbox.enqueue("csv", "k1", {"n": 1})
    entries = len(store.audit.entries())
    items = [("csv", "k1", {"n": 1}), ("fhir", "k1", {"n": 1}), ("csv", "k2", {"n": 2}), ("csv", "k2", {"n": 2})]
    assert store.outbox.enqueue_many(items, actor="export") == 2
    assert [(i.sink, i.idempotency_key) for i in store.outbox.list()] == [("csv", "k1"), ("fhir", "k1"), ("csv", "k2")]
    assert len(store.audit.entries()) == entries + 2 and store.audit.verify_chain().ok
    assert store.outbox.enqueue_many(items) == 0 and store.outbox.enqueue_many([]) == 0
    assert (store.outbox.undelivered_count(("csv",)), store.outbox.undelivered_count(("csv", "fhir"))) == (2, 3)
    store.outbox.mark_delivered(store.outbox.list("csv")[0].id, store.clock())
    assert store.outbox.undelivered_count(("csv", "webhook")) == 1 and store.outbox.undelivered_count(()) == 0


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
    # unblinded export needs a named actor and is audited
    assert main(["export", "--sink", "csv", "--unblinded", "--json"]) == 2
    capsys.readouterr()
    assert main(["export", "--sink", "csv", "--unblinded", "--actor", "dsmb-stat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 1
    entry = [e for e in store.audit.entries() if e.action == "unblinded_export"][-1]
    assert entry.actor == "dsmb-stat" and entry.entity_id == "PT-2"


def test_cli_export_unconfigured_sink_exits_2(cli_env, capsys):
    assert main(["export", "--sink", "webhook", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad_input"
