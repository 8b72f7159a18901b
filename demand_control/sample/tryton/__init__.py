"""The local Tryton 8.2 ERP that demand-control reads signals from and writes back to, created, seeded and served
for the sample distributor.

`init_database` activates the planning modules in a fresh database (SQLite by default, PostgreSQL when
`DEMAND_CONTROL_ERP_DATABASE_URI` is set), sets up a company with the accounting the modules require and
seeds it from the sample landscape; `restore_or_init` restores a cached seeded copy instead when one exists;
`serve` runs trytond on loopback and waits until a JSON-RPC login succeeds. Where each canonical key and value
lives in Tryton is in `demand_control.resources.erp.mapping`.
"""

from demand_control.sample.tryton.database import (
    InitReport,
    init_database,
    restore_or_init,
)
from demand_control.sample.tryton.server import (
    TrytonSetupError,
    TrytonSite,
    database_exists,
    is_serving,
    rpc_login,
    serve,
    stop,
)

__all__ = [
    "InitReport",
    "TrytonSetupError",
    "TrytonSite",
    "database_exists",
    "init_database",
    "is_serving",
    "restore_or_init",
    "rpc_login",
    "serve",
    "stop",
]
