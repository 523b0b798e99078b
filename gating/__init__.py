"""Monocyte gating (pure computation on arrays). No face: import the module that does the job.

``compensation`` (spillover), ``scatter`` (debris, doublets), ``density`` and ``polygon`` (2-D
populations and gates), ``monocytes`` (the CD14-bright gate), ``strategy`` (debris -> singlets ->
monocytes: ``gate_monocytes``), ``statistic`` (the PE statistic), ``stability`` (drift and flow
along Time), ``template`` (a lab's GatingML gate), ``gatingml`` (the tube's gates as GatingML 2.0),
``result`` (configuration and result records), ``fitted`` (a stored or corrected monocyte gate
applied as it is), ``positivity`` (% HLA-DR+ monocytes against the tube's own negatives).
"""
