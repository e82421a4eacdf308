"""Store names that map to the same credential variables are refused (issue 10 item 5): with
``amazon-main`` and ``AMAZON-MAIN`` both reading CROSSSHIP_AMAZON_MAIN_*, one store would send
with the other's credentials."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("initialised")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("amazon-main", "AMAZON-MAIN"),
        ("amazon-main", "amazon_main"),
        ("amazon-main", "amazon.main"),
        ("本店", "支店"),
    ],
)
def test_a_name_colliding_with_another_stores_variables_is_refused(run, first, second) -> None:
    assert run(["config", "store", "add", first, "--mall", "amazon"]).exit_code == 0

    result = run(["config", "store", "add", second, "--mall", "amazon"])

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and repr(first) in line and repr(second) in line
    listed = run(["config", "store", "list", "--format", "jsonl"])
    assert [line for line in listed.stdout.splitlines() if second in line] == []


def test_names_that_differ_in_letters_or_digits_are_fine(run) -> None:
    for name in ("amazon-main", "amazon-main2", "amazon-sub"):
        assert run(["config", "store", "add", name, "--mall", "amazon"]).exit_code == 0
