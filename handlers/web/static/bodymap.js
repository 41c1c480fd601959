/* Body map: place marks on the front and back figures by clicking, or with the keyboard.
 *
 * The page works without this file: each mark row has a list of named places. This adds:
 * a click on a figure fills the next empty row (side and position) and draws the mark;
 * on a focused figure the arrow keys move a pointer (Shift: bigger steps) and Enter or
 * Space places a mark there. What happened is announced in a live region.
 */
(function () {
  "use strict";

  var form = document.getElementById("bodymap-form");
  var status = document.getElementById("bodymap-status");
  if (!form) {
    return;
  }
  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 200;
  var HEIGHT = 400;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function field(row, name) {
    return row.querySelector('[name="mark-' + row.dataset.number + "-" + name + '"]');
  }

  function nextRow() {
    var rows = form.querySelectorAll("tr.mark-row");
    for (var i = 0; i < rows.length; i += 1) {
      var row = rows[i];
      if (!field(row, "x").value && !field(row, "type").value && !field(row, "region").value) {
        return row;
      }
    }
    return null;
  }

  function draw(svg, number, x, y) {
    var group = document.createElementNS(SVG, "g");
    group.setAttribute("class", "bodymap-mark mark-new");
    var circle = document.createElementNS(SVG, "circle");
    circle.setAttribute("cx", x);
    circle.setAttribute("cy", y);
    circle.setAttribute("r", 7);
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", x);
    label.setAttribute("y", y + 4);
    label.setAttribute("text-anchor", "middle");
    label.textContent = String(number);
    group.appendChild(circle);
    group.appendChild(label);
    svg.querySelector(".bodymap-marks").appendChild(group);
  }

  function place(svg, x, y, fromKeyboard) {
    var row = nextRow();
    if (!row) {
      say("Every row is used: save this body map, then add another.");
      return;
    }
    var side = svg.dataset.side;
    x = Math.max(0, Math.min(WIDTH, Math.round(x)));
    y = Math.max(0, Math.min(HEIGHT, Math.round(y)));
    field(row, "side").value = side;
    field(row, "x").value = String(x);
    field(row, "y").value = String(y);
    var region = field(row, "region");
    region.value = "";
    region.options[0].textContent = "On the figure";
    draw(svg, row.dataset.number, x, y);
    say("Mark " + row.dataset.number + " placed on the " + side + ". Choose its type and size in row " + row.dataset.number + ".");
    if (!fromKeyboard) {
      field(row, "type").focus();
    }
  }

  var figures = document.querySelectorAll("svg.bodymap-figure[tabindex]");
  Array.prototype.forEach.call(figures, function (svg) {
    var cursor = svg.querySelector(".bodymap-cursor");
    var at = { x: WIDTH / 2, y: HEIGHT / 2 };

    function moveCursor() {
      cursor.setAttribute("cx", at.x);
      cursor.setAttribute("cy", at.y);
    }

    svg.addEventListener("click", function (event) {
      var point = svg.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      var local = point.matrixTransform(svg.getScreenCTM().inverse());
      place(svg, local.x, local.y, false);
    });

    svg.addEventListener("keydown", function (event) {
      var step = event.shiftKey ? 20 : 5;
      var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[event.key]) {
        at.x = Math.max(0, Math.min(WIDTH, at.x + moves[event.key][0]));
        at.y = Math.max(0, Math.min(HEIGHT, at.y + moves[event.key][1]));
        moveCursor();
        event.preventDefault();
      } else if (event.key === "Enter" || event.key === " ") {
        place(svg, at.x, at.y, true);
        event.preventDefault();
      }
    });
  });
})();
