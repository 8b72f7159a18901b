"""The child process that seeds a freshly created Tryton database (`python -m demand_control.sample.tryton.seeding
seed ...`, started by `init_database`): it sets up the company and its accounting, then writes the landscape.

Seeding runs trytond in-process, but in this child process: trytond's configuration and pool are
process-global, so keeping them out of the caller (the CLI, pytest, a Dagster run) means two sites never
share a half-initialised pool.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import sys
import time
from collections.abc import Mapping
from decimal import Decimal

import pandas as pd

from demand_control.sample.tryton.records import Seeder

COMPANY_NAME = "Sample Distributor"
EMPLOYEE_NAME = "Demand Control"


def _seed(config_file: str, uri: str, database: str, login: str, frames: dict[str, pd.DataFrame]) -> dict:
    os.environ["TRYTOND_DATABASE_URI"] = uri  # proteus reads it to combine with the database name
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    from proteus import config as proteus_config

    proteus = proteus_config.set_trytond(database=database, user=login, config_file=config_file)
    lap("pool")
    as_of = _landscape_as_of(frames)
    _setup_company(proteus, as_of)
    lap("company")

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.worker import run_task

    pool = Pool(database)
    context = {**proteus.context, "_skip_warnings": True}
    seeder = Seeder(pool, frames, as_of)
    steps = [
        ("masters", seeder.masters),
        ("stock", seeder.stock),
        ("sales", seeder.sales),
        ("purchases", seeder.purchases),
        ("opportunities", seeder.opportunities),
        ("finish", seeder.finish),
    ]
    for name, step in steps:
        with Transaction().start(database, proteus.user, context=context) as transaction:
            step()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
        # Confirmed sales and purchases queue their processing (shipments, moves) to run after commit, as
        # trytond's dispatcher does when no queue worker is configured.
        for task_id in tasks:
            run_task(pool, task_id)
        lap(name)
    return {"counts": seeder.counts, "timings": timings}


def _landscape_as_of(frames: Mapping[str, pd.DataFrame]) -> dt.date:
    return pd.Timestamp(frames["inventory_position"]["as_of"].max()).date()


def _setup_company(proteus, as_of: dt.date) -> None:
    """Currency, company, employee, chart of accounts, fiscal year and payment term, as the scenarios do."""
    from dateutil.relativedelta import relativedelta
    from proteus import Model, Wizard

    Currency = Model.get("currency.currency")
    CurrencyRate = Model.get("currency.currency.rate")
    Party = Model.get("party.party")
    User = Model.get("res.user")
    Employee = Model.get("company.employee")

    currency = Currency(name="U.S. Dollar", symbol="$", code="USD", rounding=Decimal("0.01"))
    currency.save()
    CurrencyRate(date=dt.date.min, rate=Decimal("1.0"), currency=currency).save()

    company_config = Wizard("company.company.config")
    company_config.execute("company")
    company = company_config.form
    party = Party(name=COMPANY_NAME)
    party.save()
    company.party = party
    company.currency = currency
    company_config.execute("add")
    proteus._context = User.get_preferences(True, {})
    company = Model.get("company.company").find()[0]

    employee_party = Party(name=EMPLOYEE_NAME)
    employee_party.save()
    employee = Employee(party=employee_party, company=company)
    employee.save()
    user = User(proteus.user)
    user.employees.append(employee)
    user.employee = employee
    user.save()
    proteus._context = User.get_preferences(True, {})

    AccountTemplate = Model.get("account.account.template")
    ModelData = Model.get("ir.model.data")
    create_chart = Wizard("account.create_chart")
    create_chart.execute("account")
    create_chart.form.account_template = AccountTemplate(
        ModelData.get_id("account.account_template_root_en", proteus.context)
    )
    create_chart.form.company = company
    create_chart.execute("create_account")
    accounts = _accounts(company)
    create_chart.form.account_receivable = accounts["receivable"]
    create_chart.form.account_payable = accounts["payable"]
    create_chart.form.category_account_expense = accounts["expense"]
    create_chart.form.category_account_revenue = accounts["revenue"]
    create_chart.execute("create_properties")

    FiscalYear = Model.get("account.fiscalyear")
    SequenceStrict = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    start = as_of - relativedelta(months=6, day=1)
    end = as_of + relativedelta(months=5, day=31)
    move_type, = SequenceType.find([("name", "=", "Account Move")], limit=1)
    invoice_type, = SequenceType.find([("name", "=", "Invoice")], limit=1)
    fiscalyear = FiscalYear(name=str(as_of.year), start_date=start, end_date=end, company=company)
    fiscalyear.move_sequence = SequenceStrict(name=str(as_of.year), sequence_type=move_type, company=company)
    fiscalyear.move_sequence.save()
    invoice_sequence = SequenceStrict(name=str(as_of.year), sequence_type=invoice_type, company=company)
    invoice_sequence.save()
    sequences, = fiscalyear.invoice_sequences
    sequences.out_invoice_sequence = invoice_sequence
    sequences.in_invoice_sequence = invoice_sequence
    sequences.out_credit_note_sequence = invoice_sequence
    sequences.in_credit_note_sequence = invoice_sequence
    fiscalyear.save()
    fiscalyear.click("create_period")

    PaymentTerm = Model.get("account.invoice.payment_term")
    term = PaymentTerm(name="Direct")
    term.lines.new(type="remainder")
    term.save()

    Category = Model.get("product.category")
    goods = Category(name="Goods (accounting)", accounting=True)
    goods.account_expense = accounts["expense"]
    goods.account_revenue = accounts["revenue"]
    goods.save()


def _accounts(company) -> dict:
    from proteus import Model

    Account = Model.get("account.account")
    out = {}
    for kind in ("receivable", "payable", "revenue", "expense"):
        out[kind], = Account.find(
            [(f"type.{kind}", "=", True), ("company", "=", company.id), ("closed", "!=", True)], limit=1
        )
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demand_control.sample.tryton.seeding")
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="seed a freshly created Tryton database (used by init_database)")
    seed.add_argument("--config", required=True)
    seed.add_argument("--uri", required=True)
    seed.add_argument("--database", required=True)
    seed.add_argument("--login", required=True)
    seed.add_argument("--frames", required=True)
    seed.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    with open(args.frames, "rb") as fh:
        frames = pickle.load(fh)
    result = _seed(args.config, args.uri, args.database, args.login, frames)
    with open(args.result, "wb") as fh:
        pickle.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
