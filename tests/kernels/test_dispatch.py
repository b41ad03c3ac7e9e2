"""The kernel dispatcher picks compiled kernels unless told otherwise, and the twins always exist."""
from __future__ import annotations

import os
import subprocess
import sys

import cython_ext


def _backend_in_subprocess(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop(cython_ext.PURE_ENV, None)
    if env_value is not None:
        env[cython_ext.PURE_ENV] = env_value
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", "import cython_ext; print(cython_ext.BACKEND)"],
        env=env, capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def test_pure_python_forced_by_environment():
    assert _backend_in_subprocess("1") == "pure"


def test_every_family_has_a_twin_with_the_same_functions():
    for name in cython_ext.KERNELS:
        twin = cython_ext.twin(name)
        built = cython_ext.compiled(name)
        if built is None:
            continue
        public = {n for n in dir(twin) if not n.startswith("_") and callable(getattr(twin, n))}
        public -= {n for n in public if getattr(getattr(twin, n), "__module__", twin.__name__) != twin.__name__}
        missing = sorted(n for n in public if not hasattr(built, n))
        assert not missing, f"compiled {name} lacks {missing}"
