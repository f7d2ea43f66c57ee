"""The feed runtime: the Feed contract, the registry, the runner, the pipeline, writer locks and the built-in simulated and replay feeds."""
