"""The chunked import of recipe_lease_import.py, with SQLAlchemy 2 through PgBouncer in
transaction pooling: the import's engine and the editors' share the pool's two server connections."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conftest import BOUNCER_URL, POOLED
from recipe_lease_import import LeaseLost, import_chunks, pgbouncer_engine


@pytest.fixture
def engines():
    """engines(application_name): an engine through PgBouncer, disposed of after the test."""
    made = []

    def make(application_name):
        engine = pgbouncer_engine(f"{BOUNCER_URL}/{POOLED}?application_name={application_name.replace(' ', '+')}")
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def delete_field(engine, field_id):
    with engine.begin() as conn:
        conn.execute(text("SELECT lockhier.lock_field(7, 12, :id, 'field__deletion')"), {"id": field_id})
        conn.execute(text("DELETE FROM database_field WHERE id = :id"), {"id": field_id})


def rename_field(engine, field_id, name):
    with engine.begin() as conn:
        conn.execute(text("SELECT lockhier.lock_field(7, 12, :id, 'field__rename')"), {"id": field_id})
        conn.execute(text("UPDATE database_field SET name = :name WHERE id = :id"), {"name": name, "id": field_id})


def test_an_import_keeps_field_deletions_out_until_its_last_chunk(engines, direct):
    editor = engines("field editor")
    refusals = []

    def chunks():
        for chunk in range(10):
            # Between two chunks (the lease held since before the first), an editor deletes a
            # field: refused, the import named. Renaming it goes through.
            field_id = 95 + chunk
            with pytest.raises(OperationalError) as refused:
                delete_field(editor, field_id)
            assert refused.value.orig.sqlstate == "55P03"
            refusals.append(refused.value.orig.diag.message_detail)
            rename_field(editor, field_id, f"renamed before chunk {chunk}")
            assert direct.execute("SELECT owner FROM lockhier.leases").fetchall() == [("csv-import #55",)]
            yield [f"{chunk}/{n}" for n in range(100)]

    imported = import_chunks(engines("csv-import #55"), 7, 12, "csv-import #55", chunks())
    assert imported == 1000
    assert direct.execute("SELECT count(*), count(DISTINCT value) FROM imported_row WHERE table_id = 12").fetchone() == (1000, 1000)
    assert len(refusals) == 10
    for detail in refusals:
        assert detail.startswith('Blocked by a share lock on "field__deletion", "field__type_update" for table 12 (application 7), held by lease ')
        assert ' of owner "csv-import #55", acquired ' in detail
    assert direct.execute("SELECT count(*) FROM database_field WHERE name LIKE 'renamed before chunk %'").fetchone()[0] == 10
    # Released at the end: the deletion goes through now.
    assert direct.execute("SELECT count(*) FROM lockhier.leases").fetchone()[0] == 0
    delete_field(editor, 95)
    assert direct.execute("SELECT count(*) FROM database_field WHERE table_id = 12").fetchone()[0] == 9


def test_an_import_that_lost_its_lease_stops_before_its_next_chunk(engines, direct):
    def chunks():
        for chunk in range(5):
            if chunk == 2:
                # An operator ends the import's lease, by its owner's name.
                assert direct.execute("SELECT lockhier.release_leases('csv-import #56')").fetchone()[0] == 1
            yield [f"{chunk}/{n}" for n in range(100)]

    with pytest.raises(LeaseLost, match="lost after 200 rows"):
        import_chunks(engines("csv-import #56"), 7, 12, "csv-import #56", chunks())
    assert direct.execute("SELECT count(*) FROM imported_row").fetchone()[0] == 200
    assert direct.execute("SELECT count(*) FROM lockhier.leases").fetchone()[0] == 0
