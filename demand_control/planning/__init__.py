"""Pure planning logic with no Dagster import: classification, forecasting, inventory policy, exceptions."""
