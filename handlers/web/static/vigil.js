/* Vigil web view: the Blank screen control and the idle time-out.
 *
 * The page works without this file: the Blank screen control is a <label> for a
 * checkbox (pure CSS shows the cover) and a <meta http-equiv="refresh"> sends the page to
 * sign-in at the idle limit. This adds keyboard use of the control, return on any key,
 * blanking by itself shortly before the time-out, and a warning before the session ends.
 */
(function () {
  "use strict";

  var toggle = document.getElementById("blank-toggle");
  var cover = document.getElementById("blank-screen");
  var button = document.getElementById("blank-button");
  if (!toggle || !cover) {
    return; // not signed in: nothing to hide
  }

  var idle = parseInt(document.body.dataset.idleSeconds || "", 10);
  var loadedAt = Date.now();
  var lastFocus = null;
  var blankTimer = null;
  var expireTimer = null;
  var lastReset = 0;

  function isBlanked() {
    return toggle.checked;
  }

  function rememberFocus() {
    var active = document.activeElement;
    var useful = active && active !== toggle && active !== cover && active !== document.body;
    lastFocus = useful ? active : button;
  }

  // Keep the class and focus in step with the checkbox, however it was changed.
  function sync() {
    if (isBlanked()) {
      document.body.classList.add("blanked");
      if (!lastFocus) {
        rememberFocus();
      }
      cover.focus({ preventScroll: true });
    } else {
      document.body.classList.remove("blanked");
      if (lastFocus && typeof lastFocus.focus === "function") {
        lastFocus.focus({ preventScroll: true });
      }
      lastFocus = null;
      resetTimers();
    }
  }

  function blank() {
    if (isBlanked()) {
      return;
    }
    rememberFocus();
    toggle.checked = true;
    sync();
  }

  function unblank() {
    if (!isBlanked()) {
      return;
    }
    toggle.checked = false;
    sync();
  }

  function expire() {
    window.location.assign("/signin?expired=1");
  }

  function resetTimers() {
    if (!(idle > 0)) {
      return;
    }
    lastReset = Date.now();
    window.clearTimeout(blankTimer);
    window.clearTimeout(expireTimer);
    var blankAfter = idle >= 300 ? idle - 60 : Math.floor(idle * 0.8);
    blankTimer = window.setTimeout(blank, blankAfter * 1000);
    expireTimer = window.setTimeout(expire, idle * 1000);
  }

  // Activity on the page postpones blanking; while blanked only returning counts.
  function activity(event) {
    if (isBlanked()) {
      return;
    }
    if (event.type === "pointermove" && Date.now() - lastReset < 1000) {
      return;
    }
    resetTimers();
  }

  toggle.addEventListener("change", sync);

  if (button) {
    button.addEventListener("pointerdown", rememberFocus);
    button.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " " || event.key === "Spacebar") {
        event.preventDefault();
        event.stopPropagation();
        blank();
      }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (isBlanked()) {
      event.preventDefault();
      event.stopPropagation();
      unblank();
    }
  });

  ["input", "keydown", "pointerdown", "pointermove", "wheel", "touchstart"].forEach(
    function (name) {
      document.addEventListener(name, activity, { passive: true });
    }
  );

  // The server counts requests, not key presses: the session ends `idle` seconds after
  // this page was fetched. Say so a minute before, so nobody loses what they are typing.
  if (idle >= 120) {
    window.setTimeout(function () {
      var main = document.getElementById("content");
      if (!main || document.getElementById("session-warning")) {
        return;
      }
      var note = document.createElement("p");
      note.id = "session-warning";
      note.className = "session-warning";
      note.setAttribute("role", "alert");
      note.textContent =
        "For safety, this page closes in about a minute. " +
        "Save what you are writing now, or it will be lost.";
      main.insertBefore(note, main.firstChild);
    }, Math.max(0, (idle - 60) * 1000 - (Date.now() - loadedAt)));
  }

  // A page brought back from the browser's history cache must ask the server again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });

  if (isBlanked()) {
    sync(); // the box can stay ticked across a reload
  } else {
    resetTimers();
  }
})();
