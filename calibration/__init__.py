"""Bead calibration: bead events -> populations -> standard curve -> QC (pure computation).

Public API::

    calibrate_beads(fluorescence, bead_values, channel_range=..., scatter=Scatter(...),
                    clustering=ClusteringChannels(values, ranges, names)) -> Calibration
    Calibration.to_abc(f), .abc_interval(f, f_se_log=...), .in_range(f), .qc, .populations
"""

from calibration.bead_gate import BeadGate, Scatter, gate_beads
from calibration.calibrate import BadBeadValuesError, NoBeadsError, calibrate_beads, validate_bead_values
from calibration.config import CalibrationQCConfig, PeakSearchConfig
from calibration.curve import Curve, fit_curve
from calibration.joint_peaks import ClusteringChannels
from calibration.key import CalibrationKey
from calibration.result import Calibration, Population

__all__ = [
    "BadBeadValuesError", "BeadGate", "Calibration", "CalibrationKey", "CalibrationQCConfig", "ClusteringChannels", "Curve",
    "NoBeadsError", "PeakSearchConfig", "Population", "Scatter", "calibrate_beads",
    "fit_curve", "gate_beads", "validate_bead_values",
]
