"""The installed tdn holds every file of the checkout's packages: tdn/ (with py.typed), backends/
as tdn/backends and kernels/ as tdn/kernels. Run by .ci/run with the wheel's venv, outside the
checkout: python check_wheel.py CHECKOUT."""

import sys
from pathlib import Path

import tdn

SHIPPED = ("*.py", "*.cu", "*.cuh", "py.typed")
checkout = Path(sys.argv[1]).resolve()
installed = Path(tdn.__file__).parent
if installed == checkout / "tdn":
    sys.exit(f"{installed} is the checkout's tdn, not the wheel's")
missing = []
for source, target in (("tdn", "."), ("backends", "backends"), ("kernels", "kernels")):
    for pattern in SHIPPED:
        for path in (checkout / source).rglob(pattern):
            if not (installed / target / path.relative_to(checkout / source)).is_file():
                missing.append(str(path.relative_to(checkout)))
sys.exit(f"the wheel lacks {len(missing)} files of the checkout: {', '.join(sorted(missing))}" if missing else None)
