"""The contracts that cross stages, each defined and parsed once; everything else asks them.

- ``registry``: the source registry (``flows/sources.yml``) and the hospitals' time zone;
- ``batch_ids``: what a batch id is (initial, daily, delivered), checked before anything runs;
- ``manifest``: a batch's ``manifest.json``, written by the generator and read by the loader, the raw gate and the
  landing stage;
- ``runs``: the record of one pipeline run (``ledger.pipeline_runs``);
- ``quality``: what a quality gate reports (checkpoint and expectation outcomes, names and counts only);
- ``marts``: the marts the platform builds, gates and publishes.

This package sits at the bottom of the import layers (see ``[tool.importlinter]`` in pyproject.toml): it imports
nothing of the platform's, so the generator, the warehouse boundary, the gates and the reports can all use it.
"""
