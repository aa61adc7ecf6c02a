"""LLM clients for OpenEvolve's ensemble: a streaming client that cuts a call as soon as the model stops
making progress, and the mapping of LLM failures onto the controller's attempt classes."""
