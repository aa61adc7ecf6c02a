"""Combination stages: a second evolution, after a base run, over combinations of its best designs.

A stage has its own population, budget and selection settings (``genesys.stages`` in the run YAML) and
evolves hybrids over a frozen, curated pool of the base run's designs: which member in which layer, two
members on split heads, two members mixed by a gate. A combination is a normal program of a generated
framework file, scored by the same ladder. Modules: ``settings`` (the YAML), ``pool`` (curation and the
frozen copy), ``template`` (the generated framework file), ``operators`` (the offline design agent) and
``run`` (preparing and running a stage).
"""
