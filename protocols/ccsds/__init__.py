"""CCSDS and ECSS structures: space packets, PUS-C, CUC, TM/TC frames, sync, CLTU."""
