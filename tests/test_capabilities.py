"""docs/capabilities.md is what the checks find: every cell (family or variant x capability) is
run here and compared with the committed table. The export and DDP columns are `slow`."""
import dataclasses

import pytest

from mmresfamily.export import capabilities
from mmresfamily.export.capabilities import CAPABILITIES, DOC, ROWS, parse, render, run_cell

COMMITTED = parse(DOC.read_text(encoding='utf-8'))
REGENERATE = 'python tools/capabilities.py rewrites it'


def cells(slow: bool):
    return [pytest.param(row, capability, id=f'{row.label}-{capability.name}',
                         marks=([pytest.mark.slow] if slow else []) +
                         ([pytest.mark.dist] if capability.dist else []))
            for row in ROWS for capability in CAPABILITIES if capability.slow == slow]


@pytest.mark.parametrize('row,capability', cells(slow=False) + cells(slow=True))
def test_cell_is_what_the_table_says(row, capability):
    result = run_cell(row, capability)
    committed = COMMITTED[row.label, capability.name]
    assert result.cell == committed.cell, (
        f'docs/capabilities.md says {committed.cell}, the check finds {result.cell}; '
        f'{REGENERATE}')


def test_table_has_every_row_and_capability_and_nothing_else():
    assert set(COMMITTED) == {(r.label, c.name) for r in ROWS for c in CAPABILITIES}, REGENERATE
    assert render(COMMITTED) == DOC.read_text(encoding='utf-8'), REGENERATE


def test_every_family_of_the_model_table_has_a_row():
    from mmresfamily import zoo
    families = {row.cfg['type'].split('.', 1)[1] for row in capabilities.family_rows()}
    assert families == set(zoo.families())


def test_a_failing_check_is_a_cross_with_its_reason():
    row = ROWS[0]

    def fails(_):
        raise RuntimeError('no such operator\nmore detail')

    failing = dataclasses.replace(CAPABILITIES[0], check=fails)
    result = run_cell(row, failing)
    assert not result.ok and result.reason == 'RuntimeError: no such operator'
    results = {(r.label, c.name): capabilities.Result(True) for r in ROWS for c in CAPABILITIES}
    results[row.label, failing.name] = result
    text = render(results)
    assert f'| {row.label} | ✗ (1) |' in text and '1. RuntimeError: no such operator' in text
    assert parse(text)[row.label, failing.name].cell == (False, 'RuntimeError: no such operator')
