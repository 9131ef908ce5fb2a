"""Result tables resume from their CSV: what `write_csv` writes, `read_csv` gives back."""
from mmresfamily.utils.csv_table import read_csv, write_csv


def test_rows_round_trip_with_only_the_columns_asked(tmp_path):
    path = tmp_path / 'sub' / 'table.csv'
    assert read_csv(path) == []  # not written yet: an empty table, so a run starts from scratch
    write_csv(path, [dict(model='a', top1=1.5, note='x'), dict(model='b', top1=2)],
              ['model', 'top1'])
    assert read_csv(path) == [dict(model='a', top1='1.5'), dict(model='b', top1='2')]
    write_csv(path, [dict(model='c', top1=3)])  # rewritten whole, columns of the first row
    assert read_csv(path) == [dict(model='c', top1='3')]
    assert [p.name for p in path.parent.iterdir()] == ['table.csv']  # no temporary file left
