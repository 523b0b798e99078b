"""The scale keywords of an acquisition's channel, for :func:`calibration.scale.scale_findings`."""

from __future__ import annotations

from calibration.scale import ChannelScale
from pipeline.acquisition import Header


def channel_scale(header: Header, name: str) -> ChannelScale:
    """The :class:`ChannelScale` of channel ``name``: $PnB, $PnR, $PnE, $PnG and the data set's
    $DATATYPE, as the file's TEXT states them."""
    ch = header.channel(name)
    return ChannelScale(channel=ch.name, datatype=header.layout.datatype, bits=ch.bits, range=ch.range,
                        log_decades=ch.log_decades, log_offset=ch.log_offset, gain=ch.gain)
