"""Staff and pupil rosters, imported from the school's MIS as CSV (DESIGN §8).

Imports are idempotent: staff are keyed by (workspace, lower-cased email), pupils by
(workspace, UPN); a re-import updates changed rows and counts unchanged ones. A pupil
missing from a re-import is marked as left (not with `keep_missing`, for a partial file),
and one who reappears is back on the roster. The optional context columns (`CP_Plan`,
`SEN`, `Social_Worker`...) are stored by `store.pupil_context`, each change dated. A bad row
is reported with its line in the file and skipped; good rows are kept. A whole-file
problem (unreadable, empty, a required column missing) raises `RosterFileError` and
nothing is stored.

Pupil names never leave the database from here: nothing is logged, and a problem's
reason names the field (and the offending value only for non-name fields).

- `csvfile`: decoding and splitting the file, finding the columns;
- `fields`: checking each field of a row;
- `pupil_import`, `staff_import`: planning and writing the rows;
- `report`: what an import did, and `RosterFileError`;
- `progress`: progress reports and batches, shared by both imports.
"""

from store.roster.csvfile import count_rows
from store.roster.progress import BATCH_SIZE, ProgressCallback
from store.roster.pupil_import import (
    PUPIL_CONTEXT,
    PUPIL_OPTIONAL,
    PUPIL_REQUIRED,
    import_pupils,
)
from store.roster.report import ImportReport, RosterFileError, RowProblem
from store.roster.staff_import import (
    NO_SLACK_ACCOUNT,
    STAFF_OPTIONAL,
    STAFF_REQUIRED,
    SlackLookup,
    import_staff,
)

__all__ = [
    "BATCH_SIZE",
    "NO_SLACK_ACCOUNT",
    "PUPIL_CONTEXT",
    "PUPIL_OPTIONAL",
    "PUPIL_REQUIRED",
    "STAFF_OPTIONAL",
    "STAFF_REQUIRED",
    "ImportReport",
    "ProgressCallback",
    "RosterFileError",
    "RowProblem",
    "SlackLookup",
    "count_rows",
    "import_pupils",
    "import_staff",
]
