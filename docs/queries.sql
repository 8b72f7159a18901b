-- Example analyst queries on the warehouse. Each runs unchanged on SQLite (the embedded default) and on
-- PostgreSQL; tests/schema/test_queries.py runs every one against a warehouse the planning chain filled and
-- fails when a query breaks or returns nothing. Columns are described in docs/data_dictionary.md.
-- Each query starts with a "-- name:" line and the question it answers.

-- name: open_exceptions_by_type_and_severity
-- How many exceptions are open, of which type and severity, and how much money they put at risk?
SELECT exception_type, severity, COUNT(*) AS open_exceptions, SUM(money_at_risk) AS money_at_risk
FROM planning_exceptions
GROUP BY exception_type, severity
ORDER BY money_at_risk DESC, exception_type, severity;

-- name: top_open_exceptions
-- Which ten open exceptions put the most money at risk, who owns them and by when must they act?
SELECT exception_key, severity, owner_team, sla_due_at, money_at_risk, sentence
FROM planning_exceptions
ORDER BY money_at_risk DESC, exception_key
LIMIT 10;

-- name: actions_by_policy_decision
-- How many recommended actions (the recommended one of each exception) went ahead by policy, and how many
-- wait for which role, with their value?
SELECT policy_decision, approver_role, action_type, COUNT(*) AS actions, SUM(value) AS value
FROM recommended_actions
WHERE rank = 1
GROUP BY policy_decision, approver_role, action_type
ORDER BY policy_decision, value DESC;

-- name: below_reorder_point_now
-- Which SKU-locations are already below their reorder point (available balance of the current bucket),
-- and how much would the policy order?
SELECT i.sku, i.location_id, p.opening AS available_now, i.reorder_point, i.order_up_to, i.order_quantity
FROM inventory_policy i
JOIN projected_inventory p ON p.sku = i.sku AND p.location_id = i.location_id AND p.bucket = 0
WHERE p.opening < i.reorder_point
ORDER BY i.reorder_point - p.opening DESC, i.sku, i.location_id
LIMIT 20;

-- name: projected_stockouts_next_13_weeks
-- Where does the projection run out of stock within the next 13 buckets, and from when?
SELECT sku, location_id, MIN(period_start) AS first_stockout, MIN(closing) AS lowest_closing, COUNT(*) AS buckets_out
FROM projected_inventory
WHERE stockout AND bucket < 13
GROUP BY sku, location_id
ORDER BY first_stockout, sku, location_id;

-- name: forecast_accuracy_by_demand_class
-- How accurate is the forecast per demand class, against the seasonal-naive benchmark (RMSSE: lower is better)?
SELECT subject AS demand_class, series, rmsse, benchmark_rmsse, bias_pct
FROM forecast_accuracy
WHERE scope = 'class'
ORDER BY subject;

-- name: kpi_headline
-- The coordination KPIs of the latest plan, over everything.
SELECT kpi, value, unit, computed_at
FROM coordination_kpis
WHERE dimension = 'all'
ORDER BY kpi;

-- name: latest_event_replans
-- What did the latest event-scoped replans apply and change?
SELECT replan_id, replanned_at, events, erp_sku_locations, sku_locations, exceptions_opened, exceptions_updated,
       exceptions_resolved, actions
FROM replan_log
ORDER BY replan_id DESC
LIMIT 20;
