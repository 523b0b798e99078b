"""The scale keywords of an acquisition's channel, for :func:`calibration.scale.scale_findings`."""

from __future__ import annotations

from calibration.scale import ChannelScale
from pipeline.acquisition import Acquisition


def channel_scale(acq: Acquisition, name: str, datatype: str | None = None) -> ChannelScale:
    """The :class:`ChannelScale` of channel ``name`` ($PnB, $PnR, $PnE, $PnG); ``datatype`` is the
    data set's $DATATYPE when the caller has it (the Acquisition does not keep it)."""
    ch = acq.channel(name)
    return ChannelScale(channel=ch.name, datatype=datatype, bits=ch.bits, range=ch.range,
                        log_decades=ch.log_decades, log_offset=ch.log_offset, gain=ch.gain)
