"""Bead calibration: bead events -> populations -> standard curve -> QC (pure computation).
No face: import the module that does the job.

``calibrate`` (``calibrate_beads``: gate, find, assign, fit, QC), ``bead_gate`` (singlet beads),
``peaks`` and ``joint_peaks`` (bead populations in one or several channels), ``assignment``
(peaks to kit levels), ``curve`` (the standard curve fit), ``bead_qc``, ``config`` (thresholds),
``channel_choice`` (clustering channels), ``scale`` (the scale beads and cells must share),
``key`` (what a calibration is valid for), ``result`` (result records).
"""
