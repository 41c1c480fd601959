"""`vigil privacy-check`: look for pupils' names and narratives where they must not be.

DESIGN §2.1: a Slack message, log line or error names at most the incident number, the
author, the categories, a referral's agency and how overdue it is; pupils' names live only
in the `pupils` table and narratives, parents-not-contacted reasons and action text are
stored only encrypted. Two ways to check it:

- `privacy.exercise.run_exercise` (`vigil privacy-check --exercise`): on a throwaway
  database (never a school's data), import pupils with made-up names, run every flow
  through the real server against the Slack stand-in with texts carrying made-up phrases
  (`privacy.drill`), then search every Slack call the stand-in received, every answer
  Vigil gave Slack, every log record Vigil emits at DEBUG and a raw dump of every table.
- `privacy.school.check_school` (`vigil privacy-check`): read a school's own database
  without changing it, take every pupil's full name and every stored text (decrypted with
  the configured key), and search a raw dump of every table (and any log files named) for
  them. It loads none of the test tools the drill uses.

`privacy.matching` is what is looked for and how it is found, `privacy.sources` where it
is searched, `privacy.report` the report. Reports name what was found and where, never
the value found.
"""
