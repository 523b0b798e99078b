"""The small base both science wings share (calibration and gating import it, never each other):
the QC record, robust population statistics, the seeded subsample, Ashman's D, the asinh and the
probability below a cut-off (``uncertainty``)."""
