"""Rebuild the shipped samples from ../shared/data (run from the repository root).

    python crystens_core/data/samples/build_samples.py ../shared/data

mp20-sample.csv.gz is ../shared/data/mp_20/pilot_train.csv.gz unchanged;
mpts52-sample.csv.gz is 200 rows of ../shared/data/mpts_52/test.csv.gz with
21–52 sites (40 with exactly 52 sites, 160 with 21–51, drawn with seed 0).
"""

import csv
import gzip
import io
import random
import shutil
import sys
from pathlib import Path

from pymatgen.core import Structure

HERE = Path(__file__).parent


def main(shared_data: Path) -> None:
    shutil.copyfile(shared_data / "mp_20" / "pilot_train.csv.gz", HERE / "mp20-sample.csv.gz")
    csv.field_size_limit(2**31 - 1)
    with gzip.open(shared_data / "mpts_52" / "test.csv.gz", "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames
        rows = list(reader)
    sizes = [len(Structure.from_str(row["cif"], fmt="cif")) for row in rows]
    full = random.Random(0).sample([row for row, n in zip(rows, sizes) if n == 52], 40)
    middle = [row for row, n in zip(rows, sizes) if 21 <= n < 52]
    chosen = full + random.Random(0).sample(middle, 200 - len(full))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(chosen)
    with gzip.GzipFile(HERE / "mpts52-sample.csv.gz", "wb", mtime=0) as out:
        out.write(buffer.getvalue().encode())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
