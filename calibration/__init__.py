"""Bead calibration: bead events -> populations -> standard curve -> QC (pure computation).

Public API (imported lazily, so reading a configuration does not load the fitting code)::

    calibrate_beads(fluorescence, bead_values, channel_range=..., scatter=Scatter(...),
                    clustering=ClusteringChannels(values, ranges, names)) -> Calibration
    Calibration.to_abc(f), .abc_interval(f, f_se_log=...), .in_range(f), .qc, .populations
"""

from science.lazy import exports

_WHERE = {
    "BeadGate": "calibration.bead_gate", "GateCounts": "calibration.bead_gate",
    "Scatter": "calibration.bead_gate", "gate_beads": "calibration.bead_gate",
    "BadBeadValuesError": "calibration.calibrate", "NoBeadsError": "calibration.calibrate",
    "calibrate_beads": "calibration.calibrate", "validate_bead_values": "calibration.calibrate",
    "CalibrationQCConfig": "calibration.config", "PeakSearchConfig": "calibration.config",
    "Curve": "calibration.curve", "fit_curve": "calibration.curve",
    "ClusteringChannels": "calibration.joint_peaks",
    "CalibrationKey": "calibration.key",
    "Calibration": "calibration.result", "LogHistogram": "calibration.result",
    "Population": "calibration.result",
}
__all__ = sorted(_WHERE)
__getattr__ = exports("calibration", _WHERE)
