"""Pure-Python twins of the Cython kernels: same functions, identical results.

They lean on C code the standard library and numpy already have (binascii's
CRC, numpy's vector operations) so that "pure" still means "no compiler needed",
not "slow Python loops".
"""
