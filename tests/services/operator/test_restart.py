"""Exactly once across a crash: the operator is SIGKILLed between two uploads and started again.

To stop it at a known point, the first operator runs with OPERATOR_PAUSE_AFTER_UPLOADS=3: after its
third stored file of a solution it stops collecting that solution's outputs (before that run is
recorded) and says so in its log. The test then kills it with SIGKILL, as a node failure would, and
leaves behind, as an upload cut off half-way would, a stray chunk of a file that was not stored yet. A
second operator, without the setting, must finish the job: every output stored once, none twice, none
lost, the record complete.

The same crash with two DT solutions served by the one operator: each solution's service is paused in
the middle of its runs, and after the restart each solution's outputs are complete, in its own
databases only.
"""

from __future__ import annotations

import pytest

from services.shared.files import output_file_id
from tests.polling import eventually

from .conftest import OperatorEnv
from .test_runs import IMAGE, assert_outputs_stored_once_in_run_order, outputs_of, pending_pods, write_outputs

PAUSED = "collection paused after 3 uploads"


@pytest.mark.parametrize("solutions", [1, 2], ids=["one-solution", "two-solutions"])
def test_killed_between_uploads_and_restarted_every_output_is_stored_once(
    operator_env: OperatorEnv, solutions: int
) -> None:
    envs = [operator_env, *(operator_env.add_solution(f"lab{i}") for i in range(1, solutions))]
    first = operator_env.start_operator(OPERATOR_PAUSE_AFTER_UPLOADS="3")
    sids = [env.insert_record(image=IMAGE, reps=3) for env in envs]
    with operator_env.scheduling_paused():
        for env, sid in zip(envs, sids, strict=True):
            env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3})
        for env, sid in zip(envs, sids, strict=True):
            pending_pods(env, sid, 3)
            write_outputs(env, sid, 3)

    # One pause per solution: each stops in its service's second run.
    eventually(lambda: first.log_text().count(PAUSED) == len(envs), 60, "the operator to pause")
    stored_before = []
    for env, sid in zip(envs, sids, strict=True):
        files = env.files["fs.files"]
        assert files.count_documents({}) == 3
        stored_before.append({d["_id"]: d["uploadDate"] for d in files.find()})
        recorded_before = env.record(sid).get("output_files", [])
        assert len(recorded_before) == 2  # one run recorded; the third file's run is stored in part only
    first.kill()

    for env, sid, stored in zip(envs, sids, stored_before, strict=True):
        expected_ids = [
            output_file_id(sid, run, name) for run in range(3) for name in sorted(outputs_of(run))
        ]
        not_stored = next(i for i in expected_ids if i not in stored)
        env.files["fs.chunks"].insert_one({"files_id": not_stored, "n": 0, "data": b"cut off mid-upload"})
        assert env.analytics_status(sid).get("phase") != "Succeeded"

    operator_env.start_operator()
    for env, sid, stored in zip(envs, sids, stored_before, strict=True):
        status = env.wait_phase(sid, "Succeeded")
        assert status["outputs"] == 6
        # Its own files database holds its 6 outputs and nothing of the other solution's service.
        assert_outputs_stored_once_in_run_order(env, sid, 3)
        files = env.files["fs.files"]
        for file_id, uploaded in stored.items():  # the files stored before the crash were kept, not redone
            assert files.find_one({"_id": file_id})["uploadDate"] == uploaded
