"""Media: RTP/RTCP, DTMF events, SRTP glue and the facade over the C DSP core (`dsp`)."""
