"""A slice of tools/fuzz.py: damaged real encodes get a proper answer, never a crash."""

from __future__ import annotations

from tools.fuzz import MUTATIONS, fuzz, summary


def test_thirty_damaged_clips_get_documented_exit_codes_and_no_traceback(tmp_path):
    outcomes = fuzz(30, seed=7, folder=tmp_path, jobs=2, timeout_s=90)
    assert len(outcomes) == 30
    assert {o.case.mutation for o in outcomes} == set(MUTATIONS)  # every kind of damage
    findings = [(o.case.mutation, o.case.params, o.finding, o.stderr_tail)
                for o in outcomes if o.finding]
    assert not findings, summary(outcomes)
    # damage that leaves the file readable still gets measured, not refused wholesale
    assert any(o.exit_code in (0, 1) for o in outcomes)
    assert any(o.exit_code == 3 for o in outcomes)
