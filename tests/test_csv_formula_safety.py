"""The CSV export is formula-safe at every item of every user-controlled cell, read with `,` or `;`.

Values are written into the real database's text columns, exported through the API,
and read back three ways: as the comma-separated file it is, as a spreadsheet in a
`;` locale reads it (split at semicolons), and split at every comma regardless of
quotes. No cell of any reading may start with a formula character.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read.csv_export import escape_cell
from shared.config import get_settings
from tests.api_dataset import TODAY, ZONE, seed
from tests.test_auth import PASSWORD, bearer

NOW = datetime.combine(TODAY, datetime.min.time(), ZONE) + timedelta(hours=10)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = [
    "=1+1",
    "+SUM(A1)",
    "-2+3",
    "@cmd",
    "\tTAB",
    "\rCR",
    "gpt;=cmd|' /C calc'!A0",
    'gpt,=HYPERLINK("http://evil.example")',
    "ok;+1;-1;@x",
    "a;\t=1",
    "a\n=1",
    "a\r\n@1",
    'x";=1',
    '"=1',
    ";;;=",
    "=;=;=",
    "plain model",
    "a-b;c+d",  # formula characters inside an item are harmless and stay
]


@pytest.fixture
def hostile_export(analytics_engine: Engine) -> tuple[FlaskClient, list[dict[str, object]]]:
    seed(analytics_engine)
    written: list[dict[str, object]] = []
    with analytics_engine.begin() as connection:
        ids = list(
            connection.execute(
                sa.text(
                    "SELECT conversation_id FROM conversation_analysis WHERE status = 'analyzed' "
                    "AND analysis_date = :day ORDER BY 1"
                ),
                {"day": TODAY - timedelta(days=1)},
            ).scalars()
        )
        connection.execute(
            sa.text(
                "UPDATE conversation_analysis SET analysis_date = :day WHERE status = 'analyzed' AND conversation_id = ANY(:ids)"
            ),
            {"day": TODAY - timedelta(days=1), "ids": ids},
        )
        candidates = list(
            connection.execute(
                sa.text(
                    "SELECT conversation_id FROM conversation_analysis WHERE status = 'analyzed' ORDER BY 1 LIMIT :n"
                ),
                {"n": len(HOSTILE)},
            ).scalars()
        )
        for number, (conversation_id, value) in enumerate(zip(candidates, HOSTILE, strict=True)):
            row = {
                "conversation_id": f"{value}#{number}",
                "primary_model": value,
                "estimator_model": value,
                "prompt_version": value,
                "models_used": [value, HOSTILE[(number + 1) % len(HOSTILE)], "=" + value],
            }
            connection.execute(
                sa.text(
                    "UPDATE conversation_analysis SET conversation_id = :conversation_id, "
                    "primary_model = :primary_model, estimator_model = :estimator_model, "
                    "prompt_version = :prompt_version, models_used = :models_used, analysis_date = :day "
                    "WHERE conversation_id = :old"
                ),
                {**row, "old": conversation_id, "day": TODAY - timedelta(days=1)},
            )
            written.append(row)
    client = create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()
    return client, written


def _export(client: FlaskClient) -> str:
    response = client.get(API_PREFIX + "/export/csv", query_string={"days": 1}, headers=bearer(PASSWORD))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _starts_a_formula(cell: str) -> bool:
    """A parsed cell: does a spreadsheet read it as a formula?"""
    return cell.startswith(FORMULA_STARTS)


def _raw_piece_starts_a_formula(piece: str) -> bool:
    """A piece of a line cut at a separator, quotes and all: one opening quote is not content."""
    quotes = len(piece) - len(piece.lstrip('"'))
    return quotes <= 1 and piece[quotes:].startswith(FORMULA_STARTS)


def test_every_item_of_every_text_cell_is_formula_safe(
    hostile_export: tuple[FlaskClient, list[dict[str, object]]],
) -> None:
    client, written = hostile_export
    text = _export(client)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    by_id = {row["conversation_id"]: row for row in rows}
    for expected in written:
        row = by_id[escape_cell(str(expected["conversation_id"]))]
        for column in ("primary_model", "estimator_model", "prompt_version"):
            assert row[column] == escape_cell(str(expected[column])), column
        assert row["models_used"] == escape_cell(";".join(expected["models_used"]))  # type: ignore[arg-type]
        for item in row["models_used"].split(";"):
            assert not item.startswith(FORMULA_STARTS), item
    # read as the comma file it is, as a `;` locale reads it, and split at every comma
    for delimiter in (",", ";"):
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            for cell in cells:
                assert not _starts_a_formula(cell), (delimiter, cell, cells)
    for line in text.split("\r\n"):
        for separator in (",", ";", "\t", "\n", "\r"):
            for piece in line.split(separator)[1:]:
                assert not _raw_piece_starts_a_formula(piece), (separator, piece)


def test_escape_cell_matches_the_sql_and_keeps_harmless_text() -> None:
    assert escape_cell("a;=b") == "a;'=b"
    assert escape_cell("x;-y;@z") == "x;'-y;'@z"
    assert escape_cell("a,\t=1") == "a,'\t'=1"
    assert escape_cell("a\n=1") == "a\n'=1"
    assert escape_cell("a-b;c+d") == "a-b;c+d"
    assert escape_cell("-") == "'-"
    assert escape_cell("") == ""
    assert escape_cell('a;"=1') == "a;\"'=1"  # a lenient reader drops the quote
