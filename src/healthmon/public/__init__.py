"""Everything strangers may see: the status page, badges and a filtered live channel."""
