"""Writes for generator products, in three modules:

- ``setup``: fit on the platform or accept an uploaded synthesizer (a new version with its private
  reference rows, and the fit job queued);
- ``jobs``: the fit job: fit (``fitting``, ``native``) or check the uploaded model, then certify;
- ``draws``: rows for buyers: check a request against the quota, draw in the sandbox, commit, sweep.

Guarantees:
- An uploaded generator file is never unpickled in this process: only ``sandbox.run_in_sandbox`` loads it,
  and only output that passed ``schema.check_output`` leaves the job folder. Stored generator files are
  checked against their SHA-256 before every use.
- A fitted generator holds out a uniform random ``holdout_fraction`` of the provider's rows with a recorded
  seed; the certificate covers the generator file (its SHA-256) and the evaluation sample.
- A draw consumes quota only when it succeeds: its row is marked succeeded and the caller's commit hook
  (which records the ledger event) run in one transaction; a failed draw is marked failed and consumes
  nothing.
"""
