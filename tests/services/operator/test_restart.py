"""Exactly once across a crash: the operator is SIGKILLed between two uploads and started again.

To stop it at a known point, the first operator runs with OPERATOR_PAUSE_AFTER_UPLOADS=3: after its
third stored file it stops collecting (before that run is recorded) and says so in its log. The test
then kills it with SIGKILL, as a node failure would, and leaves behind, as an upload cut off
half-way would, a stray chunk of a file that was not stored yet. A second operator, without the
setting, must finish the job: every output stored once, none twice, none lost, the record complete.
"""

from __future__ import annotations

from services.shared.files import output_file_id
from tests.polling import eventually

from .conftest import OperatorEnv
from .test_runs import IMAGE, assert_outputs_stored_once_in_run_order, outputs_of, pending_pods, write_outputs


def test_killed_between_uploads_and_restarted_every_output_is_stored_once(operator_env: OperatorEnv) -> None:
    first = operator_env.start_operator(OPERATOR_PAUSE_AFTER_UPLOADS="3")
    sid = operator_env.insert_record(image=IMAGE, reps=3)
    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3})
        pending_pods(operator_env, sid, 3)
        write_outputs(operator_env, sid, 3)

    eventually(lambda: "collection paused after 3 uploads" in first.log_text(), 60, "the operator to pause")
    files = operator_env.files["fs.files"]
    assert files.count_documents({}) == 3
    stored_before = {d["_id"]: d["uploadDate"] for d in files.find()}
    recorded_before = operator_env.record(sid).get("output_files", [])
    assert len(recorded_before) == 2  # one run recorded; the third file's run is stored in part only
    first.kill()

    expected_ids = [output_file_id(sid, run, name) for run in range(3) for name in sorted(outputs_of(run))]
    not_stored = next(i for i in expected_ids if i not in stored_before)
    operator_env.files["fs.chunks"].insert_one(
        {"files_id": not_stored, "n": 0, "data": b"cut off mid-upload"}
    )
    assert operator_env.analytics_status(sid).get("phase") != "Succeeded"

    operator_env.start_operator()
    status = operator_env.wait_phase(sid, "Succeeded")
    assert status["outputs"] == 6
    assert_outputs_stored_once_in_run_order(operator_env, sid, 3)
    for file_id, uploaded in stored_before.items():  # the files stored before the crash were kept, not redone
        assert files.find_one({"_id": file_id})["uploadDate"] == uploaded
