"""examples/systemd/ (SPEC §15): a service and a timer per job, the same `-q` commands as
crontab.example, and units that `systemd-analyze verify` accepts (when the tool is there)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "examples" / "systemd"
JOBS = {"notify": "notify run", "results": "results fetch"}
INSTALLED = "/opt/crossship/.venv/bin/crossship"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string((UNITS / name).read_text(encoding="utf-8"))
    return parser


def cron_commands() -> list[str]:
    lines = (ROOT / "crontab.example").read_text(encoding="utf-8").splitlines()
    jobs = [line.split(None, 5)[5] for line in lines if line.startswith("*/15 ")]
    return [command.strip() for job in jobs for command in job.split(";")]


def test_cron_runs_both_jobs_one_after_the_other_so_they_never_meet_the_lock() -> None:
    lines = (ROOT / "crontab.example").read_text(encoding="utf-8").splitlines()
    jobs = [line for line in lines if line.startswith("*/15 ")]
    assert jobs == ["*/15 * * * * crossship -q notify run; crossship -q results fetch"]
    assert cron_commands() == ["crossship -q notify run", "crossship -q results fetch"]


@pytest.mark.parametrize("job", JOBS)
def test_each_job_has_a_timer_every_15_minutes_that_persists(job: str) -> None:
    timer = unit(f"crossship-{job}.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/15"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.parametrize("job", JOBS)
def test_each_service_runs_the_crontab_command_with_its_secrets_from_a_file(job: str) -> None:
    service = unit(f"crossship-{job}.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == f"{INSTALLED} -q {JOBS[job]}"
    assert f"crossship -q {JOBS[job]}" in cron_commands()
    assert service["EnvironmentFile"].lstrip("-") == "/etc/crossship/crossship.env"
    assert "SECRET" not in service.get("Environment", "")  # secrets only in the file
    assert service["SuccessExitStatus"] == "75"  # the lock held: nothing done, not a failure


def test_results_waits_for_notify_when_both_fire_together() -> None:
    after = unit("crossship-results.service")["Unit"]["After"].split()
    assert "crossship-notify.service" in after


def test_the_environment_file_example_names_only_crossship_variables() -> None:
    lines = (UNITS / "crossship.env.example").read_text(encoding="utf-8").splitlines()
    names = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert names and all(re.fullmatch(r"CROSSSHIP_[A-Z0-9_]+", n) for n in names)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this environment's crossship
    crossship = shutil.which("crossship") or str(Path(sys.executable).parent / "crossship")
    assert Path(crossship).exists()
    names = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
    assert names == [
        "crossship-notify.service",
        "crossship-notify.timer",
        "crossship-results.service",
        "crossship-results.timer",
    ]
    for name in names:
        text = (UNITS / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALLED, crossship), encoding="utf-8")

    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    # unknown keys and unparsable values are only warnings: none may name our units
    ours = [line for line in done.stderr.splitlines() if "crossship" in line]
    assert not ours, "\n".join(ours)
