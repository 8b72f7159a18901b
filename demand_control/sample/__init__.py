"""The sample distributor: a deterministic synthetic landscape and its export as a file drop."""

from demand_control.sample.export import write_landscape
from demand_control.sample.generator import generate_landscape

__all__ = ["generate_landscape", "write_landscape"]
