"""What every fuzz target shares: its hypothesis settings (a profile chosen by QUEQIAO_FUZZ_PROFILE),
mutation strategies over valid seeds, and the count of inputs the suite ran.

``QUEQIAO_FUZZ_PROFILE=quick`` (the default, `make test`): a few hundred inputs per target, the whole
suite well under two minutes.  ``long`` (`make fuzz`): ``QUEQIAO_FUZZ_EXAMPLES`` inputs per target
(default 40,000; with the suite's 26 targets that is over 10^6 in total).
"""
from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE_ENV = "QUEQIAO_FUZZ_PROFILE"
EXAMPLES_ENV = "QUEQIAO_FUZZ_EXAMPLES"

_base = settings.default  # the loaded profile (under CI: derandomized)
_common = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("quick", parent=_base, max_examples=int(os.environ.get(EXAMPLES_ENV, "200")), **_common)
settings.register_profile("long", parent=_base, max_examples=int(os.environ.get(EXAMPLES_ENV, "40000")), **_common)

PROFILE = os.environ.get(PROFILE_ENV, "quick")
if PROFILE not in ("quick", "long"):
    raise ValueError(f"{PROFILE_ENV} must be quick or long, not {PROFILE!r}")
#: The settings every target uses: ``@fuzz`` above ``@given``.
fuzz = settings(settings.get_profile(PROFILE))

#: Inputs run per target (explicit examples, generated ones and shrinks alike).
INPUTS: Counter[str] = Counter()


def count(target: str) -> None:
    INPUTS[target] += 1


@st.composite
def mutated(draw, seeds: st.SearchStrategy[bytes], max_edits: int = 8) -> bytes:
    """A valid input with a few edits: bit flips, overwritten, inserted or deleted octets, truncation."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and at < len(data):
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete" and at < len(data):
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def valid_or_mutated(seeds: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Mostly near-valid inputs (where the bugs are), some entirely random ones."""
    return st.one_of(seeds, mutated(seeds), st.binary(max_size=600))
