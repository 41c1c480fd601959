/* Vigil web view: typeahead pickers for staff and categories.
 *
 * Progressive enhancement. The server renders a plain <select data-picker> (multiple or
 * single) with every option the user may pick; without this file that control is what
 * people use and what the form submits. This file hides the <select> and puts an
 * editable combobox with a listbox popup (WAI-ARIA APG combobox pattern) and removable
 * chips in front of it. Every pick and removal is written straight back to the <select>'s
 * options, so the form submits exactly the same field names and values either way, and
 * the server still validates each one.
 *
 * Keys in the box: type to filter; Down/Up move through the list (Alt+Down opens it);
 * Enter picks (or un-picks) the highlighted person; Escape closes the list, then clears
 * the text; Backspace in an empty box removes the last chip. On a chip (a button):
 * Enter, Space, Backspace or Delete removes it. Changes are announced ("Ben Okafor
 * added, 2 selected") in a polite live region.
 */
(function () {
  "use strict";

  var counter = 0;

  function labelOf(option) {
    return (option.textContent || "").replace(/\s+/g, " ").trim();
  }

  function enhance(select) {
    if (select.dataset.pickerReady) {
      return;
    }
    select.dataset.pickerReady = "1";
    counter += 1;
    var multiple = select.multiple;
    var base = (select.id || "picker-" + counter) + "-picker";
    var label = select.id ? document.querySelector('label[for="' + select.id + '"]') : null;
    var labelText = label ? label.textContent.replace(/\s+/g, " ").trim() : "Choose";
    // The options one may pick: a blank "Choose…"/"Anyone" option is what removing the
    // chip of a single picker goes back to, not something to pick.
    var options = Array.prototype.filter.call(select.options, function (o) {
      return o.value !== "" && !o.disabled;
    });
    var blank = Array.prototype.find.call(select.options, function (o) {
      return o.value === "";
    });

    var wrapper = document.createElement("div");
    wrapper.className = "picker";
    wrapper.id = base;

    var chips = document.createElement("ul");
    chips.className = "picker-chips";
    chips.id = base + "-chips";
    chips.setAttribute("aria-label", labelText + ": chosen");

    var input = document.createElement("input");
    input.type = "text";
    input.id = base + "-input";
    input.className = "picker-input";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", base + "-listbox");
    var described = select.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + base + "-help");
    if (select.getAttribute("aria-invalid")) {
      input.setAttribute("aria-invalid", select.getAttribute("aria-invalid"));
    }
    if (select.required) {
      // A hidden required <select> would block the submit with no message to see: the
      // server says "choose someone" instead.
      select.required = false;
      input.setAttribute("aria-required", "true");
    }

    var help = document.createElement("p");
    help.className = "hint picker-help";
    help.id = base + "-help";
    help.textContent = multiple
      ? "Type to search, Down arrow to move through the list, Enter to add. Backspace removes the last one chosen."
      : "Type to search, Down arrow to move through the list, Enter to choose.";

    var listbox = document.createElement("ul");
    listbox.id = base + "-listbox";
    listbox.className = "picker-listbox";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", labelText);
    if (multiple) {
      listbox.setAttribute("aria-multiselectable", "true");
    }
    listbox.hidden = true;

    var status = document.createElement("div");
    status.id = base + "-status";
    status.className = "visually-hidden picker-status";
    status.setAttribute("aria-live", "polite");
    status.setAttribute("role", "status");

    var items = options.map(function (option, index) {
      var li = document.createElement("li");
      li.id = base + "-option-" + index;
      li.setAttribute("role", "option");
      li.textContent = labelOf(option);
      li.dataset.index = String(index);
      listbox.appendChild(li);
      return li;
    });

    // The chosen, in the order they were picked (the chips' order; Backspace takes the last).
    var order = [];
    options.forEach(function (option, index) {
      if (option.selected) {
        order.push(index);
      }
    });
    var shown = []; // indexes into options, in list order
    var active = -1; // position in `shown`

    wrapper.appendChild(chips);
    wrapper.appendChild(input);
    wrapper.appendChild(listbox);
    wrapper.appendChild(help);
    wrapper.appendChild(status);
    select.parentNode.insertBefore(wrapper, select.nextSibling);
    select.hidden = true;
    // "Hold Ctrl to choose more than one" is about the native list, gone now.
    var field = select.closest(".field") || select.parentNode;
    field.querySelectorAll(".picker-native-hint").forEach(function (hint) {
      hint.hidden = true;
    });
    select.setAttribute("aria-hidden", "true");
    select.tabIndex = -1;
    if (label) {
      label.htmlFor = input.id;
      if (!label.id) {
        label.id = base + "-label";
      }
      listbox.setAttribute("aria-labelledby", label.id);
      listbox.removeAttribute("aria-label");
    }

    function chosenCount() {
      return options.filter(function (o) {
        return o.selected;
      }).length;
    }

    function announce(text) {
      // Clear first so the same words twice are still read out.
      status.textContent = "";
      window.setTimeout(function () {
        status.textContent = text;
      }, 30);
    }

    function renderChips() {
      chips.textContent = "";
      order = order.filter(function (index) {
        return options[index].selected;
      });
      options.forEach(function (option, index) {
        items[index].setAttribute("aria-selected", option.selected ? "true" : "false");
        if (option.selected && order.indexOf(index) === -1) {
          order.push(index);
        }
      });
      order.forEach(function (index) {
        var option = options[index];
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "picker-chip";
        button.dataset.index = String(index);
        button.setAttribute("aria-label", "Remove " + labelOf(option));
        var text = document.createElement("span");
        text.textContent = labelOf(option);
        var cross = document.createElement("span");
        cross.className = "picker-chip-x";
        cross.setAttribute("aria-hidden", "true");
        cross.textContent = "\u00d7";
        button.appendChild(text);
        button.appendChild(cross);
        li.appendChild(button);
        chips.appendChild(li);
      });
      chips.hidden = chips.children.length === 0;
    }

    function setActive(position) {
      if (active >= 0 && shown[active] !== undefined) {
        items[shown[active]].classList.remove("picker-active");
      }
      active = position;
      if (active >= 0 && shown[active] !== undefined) {
        var item = items[shown[active]];
        item.classList.add("picker-active");
        input.setAttribute("aria-activedescendant", item.id);
        if (typeof item.scrollIntoView === "function") {
          item.scrollIntoView({ block: "nearest" });
        }
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function filter() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      shown = [];
      options.forEach(function (option, index) {
        var text = labelOf(option).toLowerCase();
        var match = words.every(function (word) {
          return text.indexOf(word) !== -1;
        });
        items[index].hidden = !match;
        if (match) {
          shown.push(index);
        }
      });
    }

    function isOpen() {
      return !listbox.hidden;
    }

    function open() {
      filter();
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      wrapper.classList.add("picker-open");
      setActive(shown.length ? 0 : -1);
      if (!shown.length) {
        announce("No matches");
      }
    }

    function close() {
      setActive(-1);
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      wrapper.classList.remove("picker-open");
    }

    function changed() {
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function pick(index) {
      var option = options[index];
      var name = labelOf(option);
      if (multiple) {
        option.selected = !option.selected;
        renderChips();
        announce(name + (option.selected ? " added, " : " removed, ") + chosenCount() + " selected");
      } else {
        option.selected = true;
        renderChips();
        announce(name + " chosen");
      }
      changed();
      input.value = "";
      close();
    }

    function remove(index) {
      var option = options[index];
      option.selected = false;
      if (!multiple && blank) {
        blank.selected = true;
      }
      renderChips();
      announce(labelOf(option) + " removed, " + chosenCount() + " selected");
      changed();
    }

    input.addEventListener("input", function () {
      open();
    });

    input.addEventListener("click", function () {
      if (!isOpen()) {
        open();
      }
    });

    input.addEventListener("keydown", function (event) {
      switch (event.key) {
        case "ArrowDown":
          event.preventDefault();
          if (!isOpen()) {
            open();
          } else if (active < shown.length - 1) {
            setActive(active + 1);
          }
          break;
        case "ArrowUp":
          event.preventDefault();
          if (!isOpen()) {
            open();
            setActive(shown.length - 1);
          } else if (active > 0) {
            setActive(active - 1);
          }
          break;
        case "Enter":
          if (isOpen()) {
            event.preventDefault(); // never submit the form from an open list
            if (active >= 0) {
              pick(shown[active]);
            }
          } else if (input.value) {
            event.preventDefault();
            open();
          }
          break;
        case "Escape":
          if (isOpen()) {
            event.preventDefault();
            close();
          } else if (input.value) {
            event.preventDefault();
            input.value = "";
          }
          break;
        case "Backspace":
          if (!input.value && multiple) {
            var last = order[order.length - 1];
            if (last !== undefined) {
              event.preventDefault();
              remove(last);
            }
          }
          break;
        case "Tab":
          close();
          break;
        default:
          break;
      }
    });

    input.addEventListener("blur", function () {
      window.setTimeout(function () {
        if (!wrapper.contains(document.activeElement)) {
          close();
        }
      }, 100);
    });

    // Pointer use: pick without taking focus from the box.
    listbox.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });
    listbox.addEventListener("click", function (event) {
      var li = event.target.closest('[role="option"]');
      if (li) {
        pick(parseInt(li.dataset.index, 10));
        input.focus();
      }
    });

    function removeChip(button) {
      var index = parseInt(button.dataset.index, 10);
      var position = Array.prototype.indexOf.call(chips.querySelectorAll("button"), button);
      remove(index);
      var left = chips.querySelectorAll("button");
      var next = left[Math.min(position, left.length - 1)];
      (next || input).focus();
    }

    chips.addEventListener("click", function (event) {
      var button = event.target.closest("button.picker-chip");
      if (button) {
        removeChip(button);
      }
    });
    chips.addEventListener("keydown", function (event) {
      var button = event.target.closest("button.picker-chip");
      if (button && (event.key === "Backspace" || event.key === "Delete")) {
        event.preventDefault();
        removeChip(button);
      }
    });

    // The error summary's link (#action-alert) goes to the box that replaced the select.
    if (select.id) {
      document.querySelectorAll('a[href="#' + select.id + '"]').forEach(function (link) {
        link.addEventListener("click", function (event) {
          event.preventDefault();
          input.focus();
        });
      });
    }

    renderChips();
  }

  document.querySelectorAll("select[data-picker]").forEach(enhance);
})();
