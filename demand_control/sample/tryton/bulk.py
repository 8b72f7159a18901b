"""Bulk writes through trytond's ORM for the seeding: creates and writes in slices SQLite accepts, and past,
done stock moves inserted as SQL rows shaped like one the ORM made."""

from __future__ import annotations

# trytond checks unique constraints on SQLite with one OR-chain over all records written in a call, and
# SQLite's parser gives up past ~100 nested terms; creating in slices of this many stays below that.
SQLITE_SAFE_BATCH = 40


def create_in_batches(Model, values: list[dict]) -> list:
    created = []
    for lo in range(0, len(values), SQLITE_SAFE_BATCH):
        created.extend(Model.create(values[lo:lo + SQLITE_SAFE_BATCH]))
    return created


def write_in_batches(Model, records: list, values: dict) -> None:
    for lo in range(0, len(records), SQLITE_SAFE_BATCH):
        Model.write(records[lo:lo + SQLITE_SAFE_BATCH], values)


def insert_done_moves(Move, moves: list[dict]) -> None:
    """Create past, done stock moves: the first through the ORM, the rest as SQL rows shaped like it.

    The ORM costs about 4 ms per move (domain validation of every field, then `do`), minutes for a demo
    history; these moves have no origin, shipment or cost to compute (fixed cost price), so the first one
    goes through `create` + `do` and serves as the prototype whose every column the others copy, with
    only their own product, quantity, locations, dates and prices changed.
    """
    if not moves:
        return
    from trytond.transaction import Transaction

    orm_fields = {k: v for k, v in moves[0].items() if k != "internal_quantity"}
    prototype, = Move.create([orm_fields])
    Move.do([prototype])
    table = Move.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.select(where=table.id == prototype.id))
    columns = [d[0] for d in cursor.description if d[0] != "id"]
    base = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    fields = Move._fields
    rows = [
        [fields[c].sql_format(values[c]) if c in values else base[c] for c in columns] for values in moves[1:]
    ]
    # 500 rows x ~22 columns stays under SQLite's limit of bound parameters per statement.
    for lo in range(0, len(rows), 500):
        cursor.execute(*table.insert([getattr(table, c) for c in columns], rows[lo:lo + 500]))
