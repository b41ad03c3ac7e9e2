"""CCSDS and ECSS structures: space packets, PUS-C, CUC, TM/TC frames, sync, Reed-Solomon, CLTU.

- ``spacepacket``  133.0-B-2 primary header, generic packets, idle packets, segmentation
- ``pus``          PUS-C TM/TC secondary headers, packet error control, generic TM/TC packets
- ``time``, ``cuc`` CUC time: the in-packet field; P-field, epochs, leap seconds, UTC
- ``tmframe``      TM (132.0-B-3) and AOS (732.0-B) transfer frames and the shared FrameProfile
- ``clcw``         the CLCW carried in the OCF
- ``vcmux``        packets <-> frames: virtual channel mux and batch demux
- ``sync``         ASM, randomizer, CADUs, the frame synchroniser
- ``rs``           Reed-Solomon (131.0-B): RS(255,223)/(255,239), interleaving, shortening, both bases
- ``tcframe``, ``cltu`` TC transfer frames (232.0-B) and CLTUs with BCH(63,56)
- ``cop1``         COP-1 FARM-1/FOP-1 state machines
"""
