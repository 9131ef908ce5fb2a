"""The capability matrix: every family of the model table, and the variants that change the
graph, against every capability -- each cell one check of `checks.py`.

`generate()` runs every cell and writes docs/capabilities.md (`tools/capabilities.py`);
tests/test_capabilities.py runs the same cells one by one and fails where the committed table
says otherwise (`parse` reads it back).
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .. import zoo
from . import checks
from .formats import first_line, our_file_named

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'capabilities.md'
PASS, FAIL = '✓', '✗'
DCN = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)


@dataclass(frozen=True, eq=False)  # identity: rows are module constants (and cache keys)
class Row:
    """A model-table row, optionally with arguments that change its graph."""
    label: str
    table_row: str
    overrides: Tuple[Tuple[str, object], ...] = ()

    @property
    def cfg(self) -> dict:
        return dict(zoo.get(self.table_row).backbone_cfg, **dict(self.overrides))


def family_rows() -> List[Row]:
    """Each family at its base depth: the family's first row in the model table."""
    firsts = {}
    for model in zoo.MODELS.values():
        firsts.setdefault(model.family, model.name)
    return [Row(f'{family} ({name})', name) for family, name in firsts.items()]


# the options of issue #21 that change the exported graph (split attention's dynamic batch is
# the ResNeSt row: every parity check runs batch sizes other than the exported one)
VARIANTS = [
    Row('resnet50_highway', 'resnet50_highway'),
    Row('resnet50 + DCNv2 (stages 2-4)', 'resnet50',
        (('dcn', DCN), ('stage_with_dcn', (False, True, True, True)))),
    Row('resnet18 + with_cp=True', 'resnet18', (('with_cp', True), )),
    Row('resnet18 + out_indices=(1, 2)', 'resnet18', (('out_indices', (1, 2)), )),
]
ROWS = family_rows() + VARIANTS


@dataclass(frozen=True)
class Capability:
    name: str
    check: Callable
    slow: bool
    doc: str
    dist: bool = False  # runs several processes (torch.distributed)


CAPABILITIES = [
    Capability('outputs', checks.check_outputs, False,
               '`out_channels` and `feature_info` give the channels and sizes of the outputs'),
    Capability('frozen_stages', checks.check_frozen_stages, False,
               '`frozen_stages=1`: stem and stage 1 without gradients, their norms in eval'),
    Capability('norm_eval', checks.check_norm_eval, False,
               '`norm_eval=True`: BatchNorm layers stay in eval and keep their statistics'),
    Capability('with_cp', checks.check_with_cp, False,
               '`with_cp=True` gives the same outputs and gradients'),
    Capability('with_cp DDP', checks.check_with_cp_ddp, True,
               f'`with_cp=True`, one step on {checks.DDP_WORLD} gloo processes (DDP) equals one '
               'process on the whole batch: gradient parity', dist=True),
    Capability('SyncBN', checks.check_sync_bn, False,
               "`norm_cfg=dict(type='SyncBN')` reverts to BN (`revert_sync_batchnorm`) and "
               'trains on CPU'),
    Capability('GN(32)', checks.check_group_norm, False,
               "`norm_cfg=dict(type='GN', num_groups=32)` builds and trains at batch 1 "
               '(fallback group counts reported, see errors.md)'),
    Capability('channels_last', checks.check_channels_last, False,
               'channels_last model and input: same features'),
    Capability('deploy', checks.check_deploy, False,
               '`optimize_for_inference` (BN folded, channels_last unless NCHW-only): parity'),
    Capability('torch.export', checks.check_torch_export, True,
               '`torch.export.export`, batch/H/W dynamic (`Dim.DYNAMIC`): parity of '
               '`ep.module()`'),
    Capability('ONNX', checks.check_onnx, True,
               "torch 2.14's dynamo exporter (from that program), run by onnxruntime: parity"),
    Capability('TorchScript trace', checks.check_torchscript_trace, True,
               '`torch.jit.trace` at one shape, run at the others: parity'),
    Capability('TorchScript script', checks.check_torchscript_script, True,
               '`torch.jit.script` (deprecated in torch 2.14 in favour of torch.export)'),
    Capability('FX', checks.check_fx, True,
               '`torch.fx.symbolic_trace`: parity of the GraphModule'),
    Capability('compile', checks.check_compile, True,
               '`torch.compile(fullgraph=True)` (no graph break; backend `aot_eager`): parity'),
]
BY_NAME = {c.name: c for c in CAPABILITIES}


@dataclass(frozen=True)
class Result:
    ok: bool
    figure: Optional[str] = None  # the largest relative error, formatted; None: pass/fail
    reason: str = ''
    seconds: float = 0.0

    @property
    def cell(self) -> Tuple[bool, str]:
        """What the table shows (and the test compares): pass, or fail and why."""
        return self.ok, self.reason


def run_cell(row: Row, capability: Capability) -> Result:
    start = time.perf_counter()
    try:
        figure = capability.check(row)
    except Exception as err:  # noqa: BLE001  every failure is a cell of the table
        return Result(False, reason=reason_of(err), seconds=time.perf_counter() - start)
    return Result(True, None if figure is None else f'{figure:.0e}',
                  seconds=time.perf_counter() - start)


def reason_of(err: BaseException) -> str:
    """One line: the check's own message, or the error's first line and the file it names
    (TorchScript errors name the unsupported construct, then where it is)."""
    if isinstance(err, checks.CapabilityError):
        return str(err).strip().splitlines()[0]
    return (first_line(err, limit=160).rstrip(':') + our_file_named(err)).replace('|', '/')


# ---- the document ----------------------------------------------------------------------------
HEADER = """# Capabilities

Generated by `python tools/capabilities.py` from the checks in `mmresfamily/export/checks.py`;
`tests/test_capabilities.py` runs every cell and fails where this table says otherwise (the
export and DDP columns are marked `slow`: `pytest -m "not slow"` skips them). Rows: each family
of the model table at its base depth (its first row) and the options that change the exported
graph.
A check builds the row with random weights and BN statistics, captures it at {export} and
compares with eager at {checks} (other batch sizes and image sizes): max|a-b| / max|b| <= {rtol:g}
for every output.

"""


def render(results: Dict[Tuple[str, str], Result], rows: Sequence[Row] = None,
           capabilities: Sequence[Capability] = None) -> str:
    rows, capabilities = rows or ROWS, capabilities or CAPABILITIES
    shape = lambda s: 'x'.join(map(str, s))  # noqa: E731
    text = HEADER.format(export=shape(checks.EXPORT_INPUT), rtol=checks.RTOL,
                         checks=', '.join(shape(s) for s in checks.CHECK_INPUTS))
    text += ''.join(f'- **{c.name}**: {c.doc}\n' for c in capabilities)
    reasons: List[str] = []
    lines = ['', '| model | ' + ' | '.join(c.name for c in capabilities) + ' |',
             '|---' * (len(capabilities) + 1) + '|']
    for row in rows:
        cells = []
        for capability in capabilities:
            result = results[row.label, capability.name]
            if result.ok:
                cells.append(PASS)
                continue
            if result.reason not in reasons:
                reasons.append(result.reason)
            cells.append(f'{FAIL} ({reasons.index(result.reason) + 1})')
        lines.append(f'| {row.label} | ' + ' | '.join(cells) + ' |')
    text += '\n'.join(lines) + '\n'
    if reasons:
        text += '\nWhy not:\n\n' + ''.join(f'{i}. {r}\n' for i, r in enumerate(reasons, 1))
    measured = [c for c in capabilities
                if any(results[r.label, c.name].figure for r in rows)]
    text += ('\n## Measured parity\n\nThe largest relative error over outputs and check inputs, '
             'as last generated (the test checks each against the bound, not these figures).\n\n'
             '| model | ' + ' | '.join(c.name for c in measured) + ' |\n'
             + '|---' * (len(measured) + 1) + '|\n')
    for row in rows:
        text += f'| {row.label} | ' + ' | '.join(
            results[row.label, c.name].figure or '-' for c in measured) + ' |\n'
    return text


def parse(text: str) -> Dict[Tuple[str, str], Result]:
    """The cells of a rendered document (figures included): what `render` wrote."""
    tables = [block for block in text.split('\n\n') if block.startswith('| model |')]
    if len(tables) != 2:
        raise ValueError('not a capabilities document: expected the matrix and the parity table')
    reasons = {}
    if '\nWhy not:\n\n' in text:
        block = text.split('\nWhy not:\n\n', 1)[1].split('\n\n', 1)[0]
        for line in block.splitlines():
            number, _, reason = line.partition('. ')
            reasons[number] = reason
    results = {}
    matrix, figures = ([[c.strip() for c in line.strip('|').split('|')]
                        for line in table.strip().splitlines() if not line.startswith('|---')]
                       for table in tables)
    for line in matrix[1:]:
        for name, cell in zip(matrix[0][1:], line[1:]):
            ok = cell == PASS
            results[line[0], name] = Result(ok, reason='' if ok else reasons[cell[3:-1]])
    for line in figures[1:]:
        for name, figure in zip(figures[0][1:], line[1:]):
            if figure != '-':
                results[line[0], name] = Result(True, figure)
    return results


def generate(path: Path = DOC, rows: Sequence[Row] = None,
             capabilities: Sequence[Capability] = None, log=print) -> Dict:
    """Run the cells of `rows` x `capabilities` (default: all) and write the document; cells
    not run keep what the document at `path` says. Returns the results."""
    path = Path(path)
    results = parse(path.read_text(encoding='utf-8')) if path.is_file() else {}
    rows, capabilities = rows or ROWS, capabilities or CAPABILITIES
    for row in rows:
        for capability in capabilities:
            result = results[row.label, capability.name] = run_cell(row, capability)
            log(f'{row.label:32s} {capability.name:20s} '
                f'{PASS if result.ok else FAIL} {result.figure or result.reason} '
                f'({result.seconds:.1f} s)')
    path.write_text(render(results), encoding='utf-8')
    return results


def select(labels: Sequence[str]) -> List[Row]:
    """The rows whose label contains one of `labels` (all when none is given)."""
    rows = [r for r in ROWS if not labels or any(text in r.label for text in labels)]
    if not rows:
        raise ValueError(f'no row label contains {labels}; rows: '
                         + ', '.join(r.label for r in ROWS))
    return rows
