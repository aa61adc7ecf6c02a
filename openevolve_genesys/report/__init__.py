"""Reports on a finished (or running) evolution: plots and a one-page summary of a run folder.

``openevolve report RUN_DIR`` (``report/cli.py``) reads the folder (``load``), measures what the fitness cache
saved and checks functional-hash sharing (``cache_savings``), draws the plots (``plots``) and writes
``RUN_DIR/report/summary.md`` (``summary``).
"""
