"""One module per notebook: the compositions its cells call, so that each cell is one step.

* :mod:`.phi4_scaling` (01b): critical slowing down on the ensembles E1–E5 of
  arXiv:1904.12072 and volume transfer of real NVP flows.
* :mod:`.u1` (02): U(1) samplers side by side, flow training, the τ_int(Q) scan over β
  with its sizes per mode, ``log Z`` and the charge distribution of a flow's proposals.
* :mod:`.sun` (03): single-matrix and lattice SU(N) flows, HMC and heatbath.
* :mod:`.schwinger` (04): the Nf = 2 Schwinger model, pseudofermions and their flows.
* :mod:`.replica_exchange` (05): ladders of replicas, their records, maps between rungs.
* :mod:`.correlated` (06): every estimator of ``d⟨O⟩/dβ`` on the same exact draws, the
  maps ``f_±`` towards ``β ± δ``, variance against the volume and the equal-cost bill.

A study function takes plain parameters and returns a frozen dataclass of results (never a
plot); the notebook draws. Everything here is built from the tested core (actions, flows,
samplers, observables, analysis) and tested in ``tests/test_<study>.py``.
"""
