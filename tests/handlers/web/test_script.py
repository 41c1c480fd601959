"""The page script, vigil.js (the Blank screen control and the idle time-out), run under
Node with a minimal stand-in DOM, when Node is there. The browser tests (tests/browser/)
run it in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.paths import REPO

SCRIPT = REPO / "handlers" / "web" / "static" / "vigil.js"
SCRIPT_CHECK = r"""
const vm = require("vm");
const fs = require("fs");
function target() {
  return {
    _l: {},
    addEventListener(type, fn) { (this._l[type] = this._l[type] || []).push(fn); },
    dispatch(type, extra) {
      const ev = Object.assign({ type, preventDefault() {}, stopPropagation() {} }, extra);
      (this._l[type] || []).forEach((fn) => fn(ev));
    },
  };
}
function run(idleSeconds) {
  let now = 0;
  const timers = [];
  const classes = new Set();
  const toggle = Object.assign(target(), { checked: false });
  const cover = Object.assign(target(), { focus() { doc.activeElement = cover; } });
  const button = Object.assign(target(), { focus() { doc.activeElement = button; } });
  const main = { firstChild: null, insertBefore(node) { this.warning = node; } };
  const body = {
    dataset: { idleSeconds: String(idleSeconds) },
    classList: { add: (c) => classes.add(c), remove: (c) => classes.delete(c) },
  };
  const ids = {
    "blank-toggle": toggle, "blank-screen": cover, "blank-button": button, content: main,
  };
  const doc = Object.assign(target(), {
    body,
    activeElement: body,
    getElementById: (id) => (id === "session-warning" ? main.warning || null : ids[id] || null),
    createElement: () => ({ setAttribute(k, v) { this[k] = v; } }),
  });
  const win = Object.assign(target(), {
    navigated: null,
    setTimeout(fn, ms) { timers.push({ at: now + ms, fn }); return timers.length; },
    clearTimeout(id) { if (timers[id - 1]) timers[id - 1].off = true; },
    location: { assign(url) { win.navigated = url; }, reload() {} },
  });
  const context = { window: win, document: doc, Date: { now: () => now } };
  vm.runInNewContext(fs.readFileSync(process.argv[1], "utf8"), context);
  function advance(seconds) {
    const end = now + seconds * 1000;
    for (;;) {
      const due = timers
        .filter((t) => !t.off && !t.done && t.at <= end)
        .sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      now = due.at;
      due.done = true;
      due.fn();
    }
    now = end;
  }
  const state = () => ({
    blanked: toggle.checked && classes.has("blanked"),
    navigated: win.navigated,
    warned: !!main.warning,
  });
  return { advance, state, doc, button, toggle };
}
const out = {};
// 10-minute idle: blank at 9 minutes, sign-in page at 10.
let page = run(600);
page.advance(539); out.before = page.state();
page.advance(1); out.at540 = page.state();
page.advance(60); out.at600 = page.state();
// Any key returns from the blank screen, and counts as activity.
page = run(600);
page.advance(540); page.doc.dispatch("keydown", { key: "a" }); out.keyReturns = page.state();
page.advance(60); out.keyAt600 = page.state();
// Activity postpones blanking.
page = run(600);
page.advance(500); page.doc.dispatch("keydown", { key: "x" });
page.advance(100); out.activeAt600 = page.state();
page.advance(440); out.quietAfter = page.state();
// Enter on the Blank screen control blanks at once; short idle blanks at 80 %.
page = run(200);
page.button.dispatch("keydown", { key: "Enter" }); out.enter = page.state();
page.doc.dispatch("keydown", { key: "Escape" });
page.advance(159); out.short159 = page.state();
page.advance(1); out.short160 = page.state();
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_blank_screen_script_blanks_returns_and_times_out() -> None:
    result = subprocess.run(
        ["node", "-e", SCRIPT_CHECK, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert seen["before"] == {"blanked": False, "navigated": None, "warned": False}
    assert seen["at540"]["blanked"] and seen["at540"]["warned"]  # idle − 60 s
    assert seen["at600"]["navigated"] == "/signin?expired=1"  # the full idle time
    assert not seen["keyReturns"]["blanked"]  # any key returns
    assert seen["keyAt600"] == {"blanked": False, "navigated": None, "warned": True}
    assert seen["activeAt600"]["blanked"] is False  # activity postponed blanking
    assert seen["quietAfter"]["blanked"] is True  # 540 s after the last activity
    assert seen["enter"]["blanked"] is True  # keyboard use of the control
    assert seen["short159"]["blanked"] is False and seen["short160"]["blanked"] is True
