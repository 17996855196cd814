"""Neutron ML2 mechanism driver for ptnetmap passthrough ports."""
