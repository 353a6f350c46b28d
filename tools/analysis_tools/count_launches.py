"""Launched operations and host reads of one mining step, mmohem's and its
peer's on the same inputs.

Counts what a GPU would launch (see :mod:`mmohem.testing.launches`): on a
CPU the dispatched operations that compute (views and bare allocations
left out, one per mmcv extension call) and the host reads; with
``--device cuda`` also the kernels the profiler saw. The cases are those
of :mod:`mmohem.testing.launch_cases`.

Usage::

    .venv/bin/python tools/analysis_tools/count_launches.py --out launches.json
"""
import argparse
import json

from mmohem.utils import markdown_table


def table(rows: list) -> str:
    """The rows as a Markdown table."""
    cuda = rows[0]['kernels'] is not None
    headers = ['case', 'arm', 'ops', 'host reads'
               ] + (['kernels'] if cuda else [])
    return markdown_table(headers + ['vs peer'], [[
        r['case'], r['arm'], r['ops'], r['host_reads'],
        *([r['kernels']] if cuda else []), f"{r['vs_peer']:.2f}x"
    ] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument(
        '--proposals',
        type=int,
        default=2000,
        help='proposals per image of the RoI case (default: 2000)')
    parser.add_argument('--out', default='count_launches.json')
    args = parser.parse_args()
    from mmdet.utils import register_all_modules

    import mmohem  # noqa: F401
    from mmohem.testing.launch_cases import count_cases
    register_all_modules(init_default_scope=False)
    rows = count_cases(args.device, args.proposals)
    print(table(rows))
    with open(args.out, 'w') as f:
        json.dump(dict(vars(args), results=rows), f, indent=2)


if __name__ == '__main__':
    main()
