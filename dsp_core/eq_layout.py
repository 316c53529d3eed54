"""Where the 7-band EQ keeps its parameters: copies of ``native/internal.h``'s ``EQ_*``.

The EQ has 28 parameters, more than an effect's 8 target slots, so they live in
memory row 0: per band ``freq, gain_db, q, on`` from ``TARGETS``, the smoothed
``freq, q, effective gain`` from ``VALUES``, five coefficients from ``COEFS``; each
channel's row keeps its bands' filter memory (two floats a band) at ``STATE``.
tests/test_engine_header.py holds these numbers to the header.
"""

from __future__ import annotations

#: (name, default frequency in Hz, default Q), low shelf, five peaks, high shelf.
EQ_BANDS = (("low", 100.0, 0.707), ("peak1", 250.0, 1.0), ("peak2", 600.0, 1.0),
            ("peak3", 1500.0, 1.0), ("peak4", 3500.0, 1.0), ("peak5", 7000.0, 1.0),
            ("high", 10000.0, 0.707))
EQ_SHAPES = (3, 2, 2, 2, 2, 2, 4)  # DAW_BQ_LOWSHELF, 5 x DAW_BQ_PEAKING, DAW_BQ_HIGHSHELF
TARGETS, VALUES, COEFS, STATE = 0, 28, 49, 84
EQ_ROW = 100
DEESSER_CHUNK = 64
