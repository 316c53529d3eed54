"""The sample library: index folders of samples, analyse them offline, search them fast.

``analysis`` measures one sample (loudness, peak, BPM, key, loop or one-shot, a heuristic
instrument class), ``tags`` reads what a file's name and folders say, ``library`` keeps
an account's samples in the one database and indexes folders incrementally, ``search``
answers queries from an in-memory index, ``preview`` renders a sample at a project's
tempo and key, and ``providers`` is the interface a remote catalogue plugs into.
See docs/samples.md.
"""
