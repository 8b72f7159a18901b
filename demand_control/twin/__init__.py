"""The digital twin: replay the sample distributor day by day from an as-of date under a scenario of
disruptions, run the control layer's own decision chain (event-driven and weekly) and Tryton's order-point
rule side by side on the same draws, and score every arm's decisions (DOMAIN.md, "Decision quality").

Pure Python over pandas/numpy; the CLI (`demand-control simulate`) and the Dagster job `simulate` wrap
`demand_control.twin.simulate.simulate`.
"""
