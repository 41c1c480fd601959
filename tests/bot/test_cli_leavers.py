"""`vigil import pupils`: leavers (`--keep-missing` for a partial file) and the MIS's
context columns, as an IT technician runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from store.crypto import generate_key
from testing.school import fictional_pupils, pupils_csv
from tests.bot.test_cli import env  # noqa: F401  (the fixture)


def test_a_reimport_reports_leavers_unless_the_file_is_partial(
    env: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    whole, partial = tmp_path / "whole.csv", tmp_path / "partial.csv"
    whole.write_text(pupils_csv(fictional_pupils(5)))
    partial.write_text(pupils_csv(fictional_pupils(2)))
    assert main(["import", "pupils", str(whole), "--team", "T0SCHOOL"]) == 0
    assert main(["import", "pupils", str(partial), "--team", "T0SCHOOL", "--keep-missing"]) == 0
    out = capsys.readouterr().out
    assert "2 unchanged; 0 rows rejected" in out and "left" not in out
    assert main(["import", "pupils", str(partial), "--team", "T0SCHOOL"]) == 0
    assert "2 unchanged, 3 left; 0 rows rejected" in capsys.readouterr().out
    assert main(["import", "pupils", str(whole), "--team", "T0SCHOOL"]) == 0
    assert "5 unchanged, 3 back on the roster" in capsys.readouterr().out


def test_context_columns_need_the_data_key(
    env: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = pupils_csv(fictional_pupils(2)).splitlines()
    rows = [rows[0] + ",CP_Plan,SEN,Social_Worker", rows[1] + ",Y,K,Wren Halloway", rows[2] + ",,,"]
    path = tmp_path / "pupils.csv"
    path.write_text("\n".join(rows) + "\n")
    monkeypatch.delenv("VIGIL_DATA_KEY", raising=False)
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 1
    assert "needs VIGIL_DATA_KEY" in capsys.readouterr().err
    monkeypatch.setenv("VIGIL_DATA_KEY", generate_key())
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 0
    out = capsys.readouterr().out
    assert "2 created" in out and "1 context changed" in out and "Halloway" not in out
