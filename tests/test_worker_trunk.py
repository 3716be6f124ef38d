"""Registration to a trunk registrar with digest auth; the password comes from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from workerproc import Sipp, WorkerProcess


@pytest.mark.parametrize(("password", "status"), [("s3cret", 200), ("wrong", 403)])
def test_trunk_registration_uses_password_from_env(
    tmp_path: Path, password: str, status: int
) -> None:
    sipp = Sipp("uas_register_digest_alice.xml", tmp_path)
    worker = WorkerProcess(
        "w1", tmp_path,
        ["--trunk-user", "alice", "--trunk-password-env", "TRUNK_SECRET",
         "--trunk-registrar", f"sip:{sipp.uri_host}"],
        env={"TRUNK_SECRET": password},
    )
    try:
        registration = worker.wait_for("registration")
        assert registration.status == status
        if status == 200:
            assert registration.expires > 0
        assert sipp.wait() == 0, sipp.report()
        assert worker.shutdown() == 0
        assert password not in " ".join(worker.proc.args)  # type: ignore[arg-type]
    finally:
        sipp.kill()
        worker.kill()
