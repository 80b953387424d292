"""Voice calls: AudioStreamUser, the call, its protocols, codec and metrics."""
