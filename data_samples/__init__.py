"""Deterministic synthetic FCS data (QuantiBRITE PE beads, HLA-DR/CD14 tubes) and its ground truth."""
