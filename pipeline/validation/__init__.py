"""Installation and operational qualification on the lab's machine (``mhladr validate``; GAMP 5
category 5 software): IQ compares the environment and the installed files with the release
(:mod:`pipeline.validation.iq`), OQ runs the shipped reference tubes through the real processing
chain in a scratch home (:mod:`pipeline.validation.oq`); :mod:`pipeline.validation.report`
writes the signed, checksummed HTML and JSON report."""
