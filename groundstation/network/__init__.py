"""The ground-station network: station forwarders, the merge, one message format (see docs/NETWORK.md)."""
