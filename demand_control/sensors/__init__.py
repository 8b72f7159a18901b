"""Sensors: read external state by cursor and request runs keyed by what changed; no side effects here."""

import dagster as dg

from demand_control.sensors.file_drop import file_drop_sensor

defs = dg.Definitions(sensors=[file_drop_sensor])
