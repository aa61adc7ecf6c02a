"""Validation of a run's winners: retrain the top designs and the baseline at several seeds on every rung.

``openevolve validate RUN_DIR`` (``validation/cli.py``) reads the run folder and picks the designs
(``candidates``), decides every training: seeds, ladder, learning rates (``plan``), trains what the journal
does not hold yet (``runner``, ``trainer``, ``journal``), compares each design with the baseline per rung
over paired seeds (``statistics``) and writes ``RUN_DIR/validation/validation.{json,md}`` (``results``).
"""
